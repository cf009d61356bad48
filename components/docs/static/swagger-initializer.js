// Swagger UI for the API's own contract. A separate file rather than an inline script, so the page's
// Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: "/openapi.yaml",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // "Authorize" keeps credentials in this page's memory only: persisted, Swagger UI would write
  // the password, the tokens and the operator token to this origin's localStorage, readable by
  // every page of the origin and outliving the app's logout.
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
