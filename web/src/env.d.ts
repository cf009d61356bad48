// Styles are imported for their side effect: esbuild bundles them into the page's stylesheet.
declare module '*.css';
