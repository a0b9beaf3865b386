# One image for every Python process: web (daphne), media node, task worker.
# Production settings come from the environment (see README "Production").
FROM node:20-bookworm-slim AS frontend
WORKDIR /src
COPY frontend/patient/package.json frontend/patient/package-lock.json frontend/patient/
COPY frontend/console/package.json frontend/console/package-lock.json frontend/console/
RUN cd frontend/patient && npm ci --no-audit --no-fund && cd ../console && npm ci --no-audit --no-fund
COPY frontend frontend
RUN cd frontend/patient && npm run build && cd ../console && npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HUB_ENV=production HUB_VAR_DIR=/var/lib/hub
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app --uid 10001 hub \
    && mkdir -p /var/lib/hub && chown hub /var/lib/hub
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=hub . .
COPY --from=frontend --chown=hub /src/frontend/patient/dist frontend/patient/dist
COPY --from=frontend --chown=hub /src/frontend/console/dist frontend/console/dist
USER hub
EXPOSE 8000
# collectstatic needs settings but no database; secrets are dummies at build time only.
RUN HUB_ENV=embedded HUB_VAR_DIR=/tmp/build-var python manage.py collectstatic --noinput -v0 && rm -rf /tmp/build-var
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "hub.asgi:application"]
