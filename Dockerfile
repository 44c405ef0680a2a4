# syntax=docker/dockerfile:1
# hahaha's image: compiled on Node 24 LTS, run on distroless Node 24 as a non-root user.
# The runtime stage holds only production dependencies, the compiled dist/, bin/ and the default
# catalog; nothing is written at run time, so it runs with a read-only root filesystem.
# Build it without Docker: scripts/build-image.sh (buildah). CI replays these steps without any
# container engine: scripts/check-dockerfile.sh.
#
#   docker build -t hahaha --build-arg VERSION=$(node -p 'require("./package.json").version') \
#     --build-arg REVISION=$(git rev-parse HEAD) .

ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script is the `node` devDependency's, which downloads a
# second Node 24 binary that this image already has.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hahaha" \
      org.opencontainers.image.description="Shuts down the sidecars of Kubernetes Job pods once their main container has exited" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/nais/hahaha" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
ENV NODE_ENV=production
# distroless' nonroot user; the chart runs the pod as the same uid.
USER 65532:65532
EXPOSE 8999
# --lite-mode: V8 without its compilers. It implies --jitless (no machine code is generated at run
# time, hence no WebAssembly: nothing hahaha loads uses it, and the compiled dist/ needs no
# TypeScript stripping) and allocates feedback lazily. hahaha's work is waiting on sockets, and
# what it computes per pod is small next to TLS and JSON.parse, which are native code either way.
# npm run bench:cluster, 2026-11-28, two runs each without and with it: idle VmRSS 77/76 -> 63.5/
# 63.6 MiB (the optimizing compilers' code pages and their data are never touched); 5 000 running
# watched pods arriving 85/88 -> 74/70 MiB, started with them 110/108 -> 89/86 MiB; CPU per reaped
# 3-sidecar pod 23.7/22.1 -> 26.7/21.4 ms, against a floor (same flags) of 14.0/14.1 -> 17.4/15.4
# ms, so within the bench's noise; reaction overhead above the floor with one sidecar, p50 +3.0 ms,
# p99 +14.7 ms (targets 15 and 50).
# --max-semi-space-size=1: a young generation of at most 1 MiB per semi-space. V8 keeps the pages
# a bigger one grew to (while the first pod list was parsed) pooled for good. Measured on a fresh
# start with 5 000 running watched pods: 177 -> 145 MiB VmRSS; with 20 000: 309 -> 195 MiB (the
# chart's limit is 256Mi). --lite-mode sets it too; it stays for anyone who drops --lite-mode.
# --optimize-for-size: V8 grows the old generation by smaller steps (and collects it to shrink),
# so garbage from parsing pods piles up less before a full GC. npm run bench:cluster, two runs
# each: started with 5 000 running watched pods 131/134 -> 114/106 MiB, 5 000 arriving 90/90 ->
# 86/87 MiB, idle 78/78 -> 76/76 MiB; CPU per reaped 3-sidecar pod 22.4/22.5 -> 23.0/21.7 ms
# (the same within the bench's noise). --lite-mode sets it too. See the README's Sizing.
# On node's command line rather than in NODE_OPTIONS, which refuses --lite-mode and
# --optimize-for-size, and so that a NODE_OPTIONS set through the chart's extraEnv adds to them
# instead of replacing them.
ENTRYPOINT ["/nodejs/bin/node", "--lite-mode", "--max-semi-space-size=1", "--optimize-for-size", "/app/bin/hahaha.js"]
CMD ["run"]
