# One image for every Warden process (api, the four workers, the migration step): compose / Kubernetes pick
# the process by command, `node services/<name>/dist/main.js` or `node packages/cli/dist/main.js`. The build
# stage compiles the TypeScript with `pnpm build` (scripts/build.mjs); the runtime stage carries the compiled
# output and production dependencies only — no tsx, no TypeScript sources, no dev tools.

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
# Frozen: an image never resolves versions the repository has not reviewed. Everything, dev dependencies
# included: the build needs esbuild.
RUN CI=true pnpm install --offline --frozen-lockfile
RUN pnpm build
# Production dependencies only, from the same lockfile and store: the dev install is thrown away and the
# built packages (scripts/build.mjs --list) are installed again with --prod. This is what
# `pnpm deploy --prod` would do, without its pnpm 10 requirements: `inject-workspace-packages` (which would
# change how development links the workspace) or `--legacy` (which resolves versions anew, outside the
# lockfile). Each bundle holds the @warden/* code it uses; what it imports is in its package's dependencies.
RUN rm -rf node_modules packages/*/node_modules services/*/node_modules tests/node_modules \
 && CI=true pnpm install --offline --frozen-lockfile --prod $(node scripts/build.mjs --list | sed 's|^|--filter ./|')
# The runtime tree: per built package its package.json, dist/ and node_modules links (into the shared
# node_modules/.pnpm), the CLI launcher, and the policy files the services read by default.
RUN mkdir -p /out/infra \
 && cp -a package.json node_modules /out/ \
 && for pkg in $(node scripts/build.mjs --list); do \
      mkdir -p "/out/$pkg" && cp -a "$pkg/package.json" "$pkg/dist" "$pkg/node_modules" "/out/$pkg/" || exit 1; \
    done \
 && cp -a packages/cli/bin /out/packages/cli/ \
 && cp -a infra/policies /out/infra/

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# V8's young generation (two semi-spaces) may grow to 2 × 16 MB, and start-up (loading the bundle and its
# dependencies) grows it to that size in every process, where it stays while the process idles: half of a
# service's idle heap. Capped at 2 × 2 MB, each idle service holds 15-25 MB less resident memory (the
# supervisor-worker more: its policy thread has a young generation of its own; `pnpm bench:startup`, which
# starts the services with these options). The price is more frequent scavenges under load: the supervisor's
# CPU per decision stayed within ~10% of the default at 2 MB, and rose ~35% at 1 MB (`pnpm bench:supervisor`
# sweeps on a busy two-core machine). Applies to every process of the image, the CLI included.
ENV NODE_OPTIONS=--max-semi-space-size=2
WORKDIR /app
# bubblewrap sandboxes the executor's verification commands (docs/executor.md, "Verifications and the sandbox");
# EXECUTOR_SANDBOX=auto uses it where the host allows unprivileged user namespaces, and reports degraded otherwise.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap util-linux && rm -rf /var/lib/apt/lists/*
# Left owned by root, so the service user can read but not rewrite its own code or the baked-in policy files.
COPY --from=build /out /app
# The executor's workspaces (compose mounts a volume here; a new named volume copies this ownership).
RUN mkdir -p /workspaces/default && chown -R node:node /workspaces
USER node
# The api's port; the workers' ops ports (9101-9104) are declared by compose and Kubernetes.
EXPOSE 3000
CMD ["node", "services/api/dist/main.js"]
