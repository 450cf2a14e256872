# The one image the Helm chart runs for both the operator and the router:
#   modelplane operator run ...   |   modelplane router serve ...
# Runs as uid/gid 10001 (the chart's securityContext) and needs no writable path but /tmp.
# The full image, not slim: it has the C compiler the native PII scanner is built with (without
# one the wheel silently falls back to the slower pure-Python scanner).
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY modelplane ./modelplane
COPY operator ./operator
COPY router ./router
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN groupadd --gid 10001 modelplane \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin modelplane
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels modelplane && rm -rf /wheels
# LiteLLM fetches its price map and tokenizers from the network unless told otherwise.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    HF_HUB_OFFLINE=1
USER 10001:10001
ENTRYPOINT ["modelplane"]
CMD ["--help"]
