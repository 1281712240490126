# One image for every postwire service; the command picks the service:
#   docker run IMAGE run ingest      (or delivery, events, notifier; "run all" by default)
#   docker run IMAGE migrate         (bring every schema up to date, then exit)
# Settings come from POSTWIRE_* environment variables (see API.md, "Configuration").

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/postwire
ENV PATH=/opt/postwire/bin:$PATH
WORKDIR /src
# Third-party packages first (exact versions, hashes checked), so this layer is reused
# until the lock changes. The lock also holds hatchling and editables, our build backend.
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.txt
# Our own packages, non-editable, built with the hatchling from the lock (no index).
COPY libs/common libs/common
COPY services services
COPY cli cli
RUN pip install --no-cache-dir --no-deps --no-build-isolation \
        ./libs/common ./services/ingest ./services/delivery ./services/events \
        ./services/notifier ./cli \
    && postwire --version

FROM python:3.11-slim
ENV PATH=/opt/postwire/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    POSTWIRE_HTTP_HOST=0.0.0.0 \
    POSTWIRE_ENV=production
# A numeric user, so Kubernetes can check runAsNonRoot without knowing the name.
RUN groupadd --system --gid 10001 postwire \
    && useradd --system --uid 10001 --gid postwire --no-create-home --home-dir /app postwire
COPY --from=build /opt/postwire /opt/postwire
WORKDIR /app
USER 10001:10001
# HTTP API + /healthz /readyz /metrics; SMTP submission (STARTTLS, TLS); inbound MX.
EXPOSE 8080 587 465 25
ENTRYPOINT ["postwire"]
CMD ["run", "all"]
