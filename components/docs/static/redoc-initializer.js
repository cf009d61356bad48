// ReDoc for the API's own contract. A separate file rather than an inline script, so the page's
// Content-Security-Policy can forbid inline scripts.
Redoc.init("/openapi.yaml", { expandResponses: "200,201" }, document.getElementById("redoc"));
