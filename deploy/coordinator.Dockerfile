# fedseg coordinator image. Build from the repository root:
#   docker build -f deploy/coordinator.Dockerfile -t fedseg-coordinator .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p fedseg-coordinator -p fedseg-participant \
 && cp target/release/fedseg-coordinator target/release/fedseg-participant /usr/local/bin/

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /var/lib/fedseg fedseg \
 && mkdir -p /var/lib/fedseg /etc/fedseg && chown fedseg /var/lib/fedseg
# The demo command starts fedseg-participant beside itself, so both ship.
COPY --from=build /usr/local/bin/fedseg-coordinator /usr/local/bin/fedseg-participant /usr/local/bin/
USER fedseg
WORKDIR /var/lib/fedseg
# 7443: participants' sessions and audit (mutual TLS); 9464: /metrics, /healthz.
EXPOSE 7443 9464
ENTRYPOINT ["fedseg-coordinator"]
CMD ["serve", "--config", "/etc/fedseg/coordinator.toml"]
