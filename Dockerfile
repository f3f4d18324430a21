# syntax=docker/dockerfile:1
# One image for every payonce process. The default command runs the API; compose (or any
# orchestrator) runs the worker and the migrations from the same image with another command:
#   node dist/src/worker/main.js   node dist/scripts/migrate.js   node dist/scripts/seed.js

FROM node:22-slim AS build
WORKDIR /app
# Dependencies first, so source edits reuse the cached install. --ignore-scripts skips `prepare`
# (the build), which cannot run before the sources are copied.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
COPY seeds ./seeds
COPY scripts ./scripts
RUN npm run build

FROM node:22-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; --ignore-scripts again skips `prepare`, whose tsc is a dev tool.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# The code stays owned by root: the process can read it but not rewrite it.
USER node
EXPOSE 3000
# No HEALTHCHECK here: the worker and the migrations share this image and serve no HTTP.
# Compose checks the API's /health/ready itself.
CMD ["node", "dist/src/api/server.js"]
