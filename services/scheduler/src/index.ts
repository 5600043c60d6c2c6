export { loadConfig, configSchema, type Config } from './config.js';
