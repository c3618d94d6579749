# braindrill service image: one program for every role (ROLE=api, worker or all). See docs/DEPLOY.md.
#
#   docker build -t braindrill:local .                               # a machine that reaches a registry
#   DOCKER_BUILDKIT=0 docker build --network none \
#     --build-arg BASE_IMAGE=braindrill-node:<version>-bookworm -t braindrill:local .   # no registry
#   ./deploy.sh image                                                # the latter, base image included
#
# BASE_IMAGE  any Debian-based image with Node.js 20+ on PATH (default node:20-bookworm-slim).
#             Without a registry, `./deploy.sh image` makes braindrill-node:<version>-bookworm locally
#             (debootstrap minbase + this host's Node.js package).
# DEPS        where the npm dependencies (development ones included: the build needs TypeScript) come from:
#               auto     (default) node_modules/ from the build context when it is there (npm ci first,
#                        on a Linux x86-64 glibc host like the image), else `npm ci` (needs the registry)
#               context  node_modules/ from the build context, required (works with --network none)
#               npm      always `npm ci` (needs the registry during the build)
#             The service runs the build (dist/, `npm run build` in the image); development
#             dependencies are pruned offline afterwards when the base has npm.
#
# The sandboxes are not in this image: a manager (ROLE=worker or all) starts them through the Docker
# socket it is given (-v /var/run/docker.sock:/var/run/docker.sock, and --group-add with the socket's
# group id, since the process is not root), and that Docker must already hold the runtime image made
# by `bash images/build.sh` from the same checkout. An API node (ROLE=api) needs no Docker socket.
ARG BASE_IMAGE=node:20-bookworm-slim

# --- the application and its production dependencies ------------------------------------------
FROM ${BASE_IMAGE} AS app
ARG DEPS=auto
# The classic builder keeps this stage as a dangling image; ./deploy.sh image prunes it by this label.
LABEL braindrill.stage=app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY . .
RUN set -eu; \
    case "$DEPS" in \
      auto) if [ ! -f node_modules/typescript/package.json ]; then rm -rf node_modules; npm ci --no-audit --no-fund; fi ;; \
      context) [ -f node_modules/typescript/package.json ] || { echo "DEPS=context: no node_modules/ in the build context (run npm ci first)" >&2; exit 1; } ;; \
      npm) rm -rf node_modules; npm ci --no-audit --no-fund ;; \
      *) echo "DEPS=$DEPS: auto, context or npm" >&2; exit 1 ;; \
    esac; \
    rm -rf dist; \
    node node_modules/typescript/bin/tsc -p tsconfig.build.json; \
    rm -f dist/.tsbuildinfo; \
    if command -v npm >/dev/null 2>&1; then \
      npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error \
        || echo "warning: npm prune failed; development dependencies stay in the image" >&2; \
    fi; \
    find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete; \
    node -e "import('/app/dist/src/node.js').then(() => console.log('dist/src/node.js and its dependencies load on node ' + process.version))"

# --- the service image --------------------------------------------------------------------------
FROM ${BASE_IMAGE}

# Production defaults: bind every interface of the container, and refuse the development API keys
# (set API_KEYS). DATA_DIR is only used in the embedded single-node mode (no DATABASE_URL).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/var/lib/braindrill \
    NPM_CONFIG_UPDATE_NOTIFIER=false

RUN groupadd --gid 10001 braindrill \
 && useradd --uid 10001 --gid braindrill --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin braindrill \
 && install -d -o braindrill -g braindrill -m 0750 /var/lib/braindrill

# Root-owned and read-only for the service: it writes nothing here.
COPY --from=app /app /app
WORKDIR /app

USER braindrill:braindrill
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
