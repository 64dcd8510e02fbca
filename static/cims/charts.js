// Draws the plotly charts of report and dashboard pages. Each chart is a <div data-chart="ID">
// whose figure is in <script type="application/json" id="ID"> (json_script: data, not code, so the
// Content-Security-Policy's script-src 'self' holds). htmx swaps (the dashboard's period switch)
// draw the charts of the new content.
(function () {
  "use strict";
  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function draw(root) {
    if (!window.Plotly) {
      return;
    }
    root.querySelectorAll("[data-chart]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-chart"));
      if (!source) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      window.Plotly.react(element, figure.data || [], figure.layout || {}, config).then(function () {
        element.setAttribute("data-drawn", source.id);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    draw(event.detail.target || document);
  });
  // The back button restores a page htmx pushed (the dashboard's period): draw its charts again.
  document.addEventListener("htmx:historyRestore", function () {
    draw(document);
  });
  // Charts in a tab hidden at first get their width when the tab is shown.
  document.addEventListener("shown.bs.tab", function () {
    document.querySelectorAll("[data-drawn]").forEach(function (element) {
      if (element.offsetParent !== null) {
        window.Plotly.Plots.resize(element);
      }
    });
  });
})();
