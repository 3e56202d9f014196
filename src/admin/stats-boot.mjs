// Entry point of the dashboard's query thread (stats-reader.ts). Worker threads do not inherit
// the TypeScript loader of the main thread, so it is registered here first.
import { registerTypeScript } from '../runtime/typescript.mjs';

registerTypeScript();
await import('./stats-thread.ts');
