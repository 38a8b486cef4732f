# The ratelimit binary in a small image: `docker-compose up` runs it as
# three worker replicas and one status watcher (see docker-compose.yml).
FROM golang:1.26 AS build
# The module proxy and Go flags, when the build passes them
# (--build-arg GO_PROXY=https://mirror.example,direct); empty keeps the base
# image's own. Not named GOPROXY/GOFLAGS: an ENV of the base image by that
# name would win over the argument.
ARG GO_PROXY=""
ARG GO_FLAGS=""
WORKDIR /src
COPY go.mod go.sum ./
RUN if [ -n "$GO_PROXY" ]; then export GOPROXY="$GO_PROXY"; fi; \
    if [ -n "$GO_FLAGS" ]; then export GOFLAGS="$GO_FLAGS"; fi; \
    go mod download
COPY cmd ./cmd
COPY descope ./descope
COPY executor ./executor
COPY internal ./internal
COPY limiter ./limiter
COPY scripts ./scripts
RUN if [ -n "$GO_FLAGS" ]; then export GOFLAGS="$GO_FLAGS"; fi; \
    CGO_ENABLED=0 go build -trimpath -o /ratelimit ./cmd/ratelimit

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /ratelimit /ratelimit
ENTRYPOINT ["/ratelimit"]
