# Coffer in a container: `docker build -t coffer .` then
#   docker run -p 8080:8080 -v coffer-data:/var/lib/coffer coffer
# (the embedded store in the volume), or with COFFER_DATABASE_URL for PostgreSQL
# (deploy/compose.yaml runs PostgreSQL and two nodes).

# Build: the release binary, from the locked dependencies.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p coffer && cp target/release/coffer /coffer

# Run: a small image, an unprivileged user, the data directory as a volume.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/coffer --create-home coffer
COPY --from=build /coffer /usr/local/bin/coffer
USER coffer
ENV COFFER_DATA=/var/lib/coffer/data \
    COFFER_LISTEN=0.0.0.0:8080 \
    COFFER_LOG_FORMAT=json
VOLUME ["/var/lib/coffer"]
EXPOSE 8080
# Ready means able to serve: the store answers a round trip (see README, "Operating").
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["coffer"]
CMD ["serve"]
