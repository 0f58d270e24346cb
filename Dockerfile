# One image for all five onbehalf services; docker-compose.yml picks the
# service via its `command`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml constraints.txt ./
COPY libs/ ./libs/
COPY services/ ./services/
COPY policies/ ./policies/
COPY onbehalf/ ./onbehalf/

RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --create-home --uid 10001 --user-group app \
    && chown -R app:app /app

USER app

# Default only; docker-compose.yml overrides the command per service.
CMD ["python", "-c", "print('onbehalf image: set a service command, e.g. python -m onbehalf.server services.identity.app:create_app --port 8001')"]
