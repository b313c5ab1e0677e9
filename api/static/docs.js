// Starts Swagger UI on the /docs page, reading the document next to it (/openapi.json).
// validatorUrl: null, since Swagger UI would otherwise send the document to swagger.io's
// online validator: the page fetches nothing but this API.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
  });
});
