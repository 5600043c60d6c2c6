export { createApp, BULL_BOARD_PATH, type AppOptions } from './app.js';
export { loadConfig, configSchema, type Config } from './config.js';
export { createApiService, type ApiService } from './service.js';
export { buildOpenApiDocument } from './openapi.js';
export { errorMiddleware } from './http-errors.js';
