package main

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// An image profile says what file system a container sees.
const (
	// profileHost: the host's file system (the default): every binary of
	// the node, including /bin/sh, kill and killall, is there.
	profileHost = "host"
	// profileDistroless: a root holding only the entrypoint binary and
	// what a distroless base image has (see distrolessRoot in shim.go).
	profileDistroless = "distroless"
)

// Annotations that force a profile (test-only): for every container of the
// pod, or, with the container's name appended after a dot, for one
// container (that one wins).
const (
	profileAnnotation = "hahaha.test/image-profile"
)

//go:embed image-profiles.yaml
var defaultProfilesYAML []byte

type profileRule struct {
	Image   string `json:"image"`
	Profile string `json:"profile"`
}

type imageProfiles struct {
	Rules []profileRule `json:"rules"`
}

func validProfile(p string) bool { return p == profileHost || p == profileDistroless }

// parseProfiles reads an image profile file (YAML or JSON).
func parseProfiles(b []byte) (*imageProfiles, error) {
	var ip imageProfiles
	if err := yaml.UnmarshalStrict(b, &ip); err != nil {
		return nil, err
	}
	for i, r := range ip.Rules {
		if r.Image == "" {
			return nil, fmt.Errorf("rule %d: image pattern is empty", i+1)
		}
		if !validProfile(r.Profile) {
			return nil, fmt.Errorf("rule %d (%s): profile %q is neither %q nor %q", i+1, r.Image, r.Profile, profileHost, profileDistroless)
		}
	}
	return &ip, nil
}

// loadProfiles reads --image-profiles, or the built-in list when path is "".
func loadProfiles(path string) (*imageProfiles, error) {
	b := defaultProfilesYAML
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	ip, err := parseProfiles(b)
	if err != nil && path != "" {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ip, err
}

// forImage is the profile of an image by the rules alone.
func (ip *imageProfiles) forImage(image string) string {
	if ip == nil {
		return profileHost
	}
	for _, r := range ip.Rules {
		if globMatch(r.Image, image) {
			return r.Profile
		}
	}
	return profileHost
}

// forContainer is the profile of one container of pod: the per-container
// annotation, else the pod-wide one, else the rules. An annotation with an
// unknown value is ignored.
func (ip *imageProfiles) forContainer(pod *v1.Pod, name, image string) string {
	if p := pod.Annotations[profileAnnotation+"."+name]; validProfile(p) {
		return p
	}
	if p := pod.Annotations[profileAnnotation]; validProfile(p) {
		return p
	}
	return ip.forImage(image)
}

// globMatch matches s against pattern as a whole, where `*` matches any run
// of characters and everything else is literal.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
