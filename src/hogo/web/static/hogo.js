/* hogo web UI: the only script besides htmx. No inline scripts (CSP script-src 'self').
 * Sends the per-session CSRF token (from <meta name="csrf-token">) with every htmx request. */
(function () {
  "use strict";
  document.addEventListener("htmx:configRequest", function (evt) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) {
      evt.detail.headers["X-CSRF-Token"] = meta.content;
    }
  });
})();
