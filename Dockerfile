# One image for every Warden process (api, the four workers, the migration step): they share the
# workspace, and compose / Kubernetes pick the process by command. Internal packages ship TypeScript source
# that tsx runs at start-up, so there is no compile stage.

ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Pinned to the root package.json's packageManager. Corepack is avoided: it verifies signatures over the
# network at run time.
RUN npm i -g pnpm@10.34.8
# `pnpm fetch` needs only the lockfile, so this layer (the slow download) is reused until a dependency
# changes, whatever happens to the source.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
# Frozen: an image never resolves versions the repository has not reviewed. Dev dependencies stay on purpose:
# `node --import tsx` resolves tsx from the repo root, where it is a devDependency; NODE_ENV=production is
# therefore set only in the runtime stage (pnpm would skip them under it).
RUN CI=true pnpm install --offline --frozen-lockfile

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Left owned by root, so the service user can read but not rewrite its own code or the baked-in policy files.
COPY --from=build /app /app
# bubblewrap sandboxes the executor's verification commands (docs/executor.md, "Verifications and the sandbox");
# EXECUTOR_SANDBOX=auto uses it where the host allows unprivileged user namespaces, and reports degraded otherwise.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap util-linux && rm -rf /var/lib/apt/lists/*
# The executor's workspaces (compose mounts a volume here; a new named volume copies this ownership).
RUN mkdir -p /workspaces/default && chown -R node:node /workspaces
USER node
# The api's port; the workers' ops ports (9101-9104) are declared by compose and Kubernetes.
EXPOSE 3000
CMD ["node", "--import", "tsx", "services/api/src/main.ts"]
