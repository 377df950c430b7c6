# fedseg participant image (runs inside each bank; opens no port). Build
# from the repository root:
#   docker build -f deploy/participant.Dockerfile -t fedseg-participant .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p fedseg-participant \
 && cp target/release/fedseg-participant /usr/local/bin/

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /var/lib/fedseg fedseg \
 && mkdir -p /var/lib/fedseg /etc/fedseg && chown fedseg /var/lib/fedseg
COPY --from=build /usr/local/bin/fedseg-participant /usr/local/bin/
USER fedseg
WORKDIR /var/lib/fedseg
ENTRYPOINT ["fedseg-participant"]
CMD ["run", "--config", "/etc/fedseg/participant.toml"]
