# A small non-root image that runs `baton serve`.
# Same install path as scripts/test.sh: a regular `pip install .` of this checkout.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY connectors ./connectors
COPY schemas ./schemas
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/baton --create-home baton
COPY --from=build /install /usr/local
USER baton
WORKDIR /var/lib/baton
# The demo config keeps its SQLite file under ./baton-data, i.e. this volume.
VOLUME ["/var/lib/baton"]
EXPOSE 8080
ENV PYTHONUNBUFFERED=1
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz').status == 200 else 1)"]
# Listening on all interfaces inside the container is off loopback, so the API and the
# sources take tokens (examples/docker.yaml): docker run -e BATON_API_TOKEN=...
# -e BATON_INGEST_TOKEN=... -p 8080:8080 IMAGE. Mount a config and set BATON_CONFIG (or
# pass --config) for anything real.
COPY examples/docker.yaml /etc/baton/baton.yaml
ENV BATON_CONFIG=/etc/baton/baton.yaml
ENTRYPOINT ["baton"]
CMD ["serve"]
