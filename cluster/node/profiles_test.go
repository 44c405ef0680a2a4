package main

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"a", "a", true},
		{"a", "ab", false},
		{"a*", "a", true},
		{"a*", "a/b:c@d", true},
		{"*-alpine*", "x:2.1-alpine", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "a-b-b-c", true},
		{"a*b*c", "acb", false},
		{"a*bc", "abc", true},
		{"ab*bc", "abc", false}, // prefix and suffix must not overlap
	}
	for _, c := range cases {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestDefaultProfiles(t *testing.T) {
	ip, err := loadProfiles("")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"gcr.io/distroless/static:nonroot":                                     profileDistroless,
		"gcr.io/distroless/base-debian12@sha256:abc":                           profileDistroless,
		"cr.l5d.io/linkerd/proxy:edge-25.1.1":                                  profileDistroless,
		"cr.l5d.io/linkerd/proxy":                                              profileDistroless,
		"gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0":                   profileDistroless,
		"gcr.io/cloud-sql-connectors/cloud-sql-proxy":                          profileDistroless,
		"gcr.io/cloud-sql-connectors/cloud-sql-proxy@sha256:abc":               profileDistroless,
		"gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0-alpine":            profileHost,
		"gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0-bookworm":          profileHost,
		"gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0-alpine@sha256:abc": profileHost,
		"ghcr.io/jimmidyson/configmap-reload:v0.15.0":                          profileDistroless,
		"busybox":                                          profileHost,
		"docker.io/library/alpine:3":                       profileHost,
		"gcr.io/cloudsql-docker/gce-proxy:1.33":            profileDistroless,
		"eu.gcr.io/cloudsql-docker/gce-proxy:1.37.4":       profileDistroless,
		"gcr.io/cloudsql-docker/gce-proxy":                 profileDistroless,
		"gcr.io/cloudsql-docker/gce-proxy:1.37.4-alpine":   profileHost,
		"gcr.io/cloudsql-docker/gce-proxy:1.37.4-buster":   profileHost,
		"gcr.io/cloudsql-docker/gce-proxy:1.37.4-bullseye": profileHost,
		"any": profileHost,
	}
	for image, want := range cases {
		if got := ip.forImage(image); got != want {
			t.Errorf("%s: profile %s, want %s", image, got, want)
		}
	}
}

func TestProfileAnnotations(t *testing.T) {
	ip, _ := loadProfiles("")
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		"hahaha.test/image-profile":          "distroless",
		"hahaha.test/image-profile.tools":    "host",
		"hahaha.test/image-profile.mistyped": "distrolss",
	}}}
	if got := ip.forContainer(pod, "app", "busybox"); got != profileDistroless {
		t.Errorf("pod-wide annotation: %s", got)
	}
	if got := ip.forContainer(pod, "tools", "gcr.io/distroless/static"); got != profileHost {
		t.Errorf("per-container annotation: %s", got)
	}
	if got := ip.forContainer(pod, "mistyped", "busybox"); got != profileDistroless {
		t.Errorf("unknown value is ignored: %s", got)
	}
	if got := ip.forContainer(&v1.Pod{}, "x", "gcr.io/distroless/static"); got != profileDistroless {
		t.Errorf("no annotation: %s", got)
	}
}

func TestParseProfilesRejects(t *testing.T) {
	for _, in := range []string{
		`rules: [{image: "x", profile: slim}]`,
		`rules: [{image: "", profile: host}]`,
		`rulez: []`,
	} {
		if _, err := parseProfiles([]byte(in)); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}
