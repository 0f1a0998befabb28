# Vigil server image: `docker compose up` (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /opt/vigil
COPY pyproject.toml README.md ./
COPY app ./app
COPY monitors ./monitors
COPY simulators ./simulators
COPY frontend ./frontend
COPY config ./config
RUN pip install --no-cache-dir -e . \
    && useradd --system --home /var/lib/vigil --create-home vigil
USER vigil
ENV VIGIL_HOST=0.0.0.0 \
    VIGIL_DB_PATH=/var/lib/vigil/vigil.sqlite3
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["vigil", "serve", "--config", "/opt/vigil/config/vigil.example.toml"]
