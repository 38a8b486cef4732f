# The ratelimit binary in a small image: `docker compose up` runs it as three
# worker replicas and one status watcher (see docker-compose.yml).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /ratelimit ./cmd/ratelimit

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /ratelimit /ratelimit
ENTRYPOINT ["/ratelimit"]
