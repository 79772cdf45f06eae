# syntax=docker/dockerfile:1
# Build: the SDK image compiles the Native AOT binary (clang, zlib and a static libsqlite3 for linking).
FROM mcr.microsoft.com/dotnet/sdk:10.0-bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends clang zlib1g-dev libsqlite3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN dotnet publish src/FastIngest/FastIngest.csproj -c Release -r linux-x64 -o /out -p:DebugType=none \
    && mkdir -p /data

# Run: the binary needs only libc and libm, so the chiseled runtime-deps image (no shell, non-root) is enough.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled
COPY --from=build /out/fastingest /usr/local/bin/fastingest
# The chiseled image has no shell to mkdir/chown with; the data directory comes owned by its "app" user (1654).
COPY --from=build --chown=1654:1654 /data /data
USER 1654
VOLUME /data
EXPOSE 8080
ENV FASTINGEST_DATA=/data \
    FASTINGEST_LISTEN=0.0.0.0:8080
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/fastingest"]
