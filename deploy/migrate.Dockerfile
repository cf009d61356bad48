# The migration tool and the migrations, for the Kubernetes Job (deploy/kubernetes/).
#   docker build -f deploy/migrate.Dockerfile -t ghcr.io/your-org/sendinchat-migrate:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sendinchat-migrate

FROM debian:bookworm-slim
COPY --from=build /src/target/release/sendinchat-migrate /usr/local/bin/sendinchat-migrate
COPY sql /sql
USER 65534
ENTRYPOINT ["/usr/local/bin/sendinchat-migrate"]
