# Pantau services (ingest, simulator, migrations) as one image; the command picks the service.
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 pantau
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pantau ./pantau
COPY ingest ./ingest
COPY processing ./processing
COPY api ./api
COPY simulators ./simulators
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER pantau
ENTRYPOINT ["pantau"]
CMD ["--help"]
