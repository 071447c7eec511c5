# The image deploy/base runs (`kuma-identity-webhook:latest`). Build from the repository root:
#   docker build -t kuma-identity-webhook:latest .
# The binary talks TLS through rustls and needs no OpenSSL; distroless "cc" brings the glibc it
# links against and nothing else.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kuma-identity-webhook

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/kuma-identity-webhook /usr/local/bin/kuma-identity-webhook
# 65532 is distroless's "nonroot"; the Deployment's runAsUser says the same.
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/kuma-identity-webhook"]
CMD ["serve"]
