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
COPY monitor ./monitor
COPY ops ./ops
COPY cli ./cli
RUN pip install --no-cache-dir . && rm -rf /root/.cache
# Where `registry credentials --out` writes the broker's files, as the broker's user (uid 1883 in
# the eclipse-mosquitto image): a named volume mounted here starts with this owner and mode.
RUN mkdir -p /mosquitto/auth && chown 1883:1883 /mosquitto/auth && chmod 700 /mosquitto/auth

USER pantau
ENTRYPOINT ["pantau"]
CMD ["--help"]
