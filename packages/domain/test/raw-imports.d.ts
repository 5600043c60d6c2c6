// Vite (and so vitest) imports any file as text with `?raw`: how a pure-domain test reads a shipped file
// without node:fs.
declare module '*?raw' {
  const text: string;
  export default text;
}
