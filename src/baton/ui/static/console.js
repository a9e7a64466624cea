/* Baton console: live updates. When /ui/events says incidents changed, each live part
   of the page is fetched again and swapped in by htmx. No inline script: the CSP forbids
   it. */
(function () {
  "use strict";
  // Live parts: the incident list, an incident's status and timeline. Each names the
  // URL it is fetched from again (data-live-src) when the stream says incidents changed.
  function live(element, events) {
    var pending = false, again = false;
    function refresh() {
      if (pending) { again = true; return; }  // once more when this one is done
      pending = true;
      var done = function () {
        pending = false;
        if (again) { again = false; refresh(); }
      };
      window.htmx.ajax("GET", element.getAttribute("data-live-src"),
                       {target: element, swap: "innerHTML"}).then(done, done);
    }
    events.addEventListener("incidents", refresh);
    // Once connected (and after every reconnect): whatever changed since the page was
    // rendered and before the stream listened.
    events.addEventListener("open", refresh);
  }
  function start() {
    var parts = document.querySelectorAll("[data-live-src]");
    if (!parts.length || !window.EventSource || !window.htmx) { return; }
    var events = new EventSource(parts[0].getAttribute("data-events"));
    for (var i = 0; i < parts.length; i++) { live(parts[i], events); }
    window.addEventListener("pagehide", function () { events.close(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
