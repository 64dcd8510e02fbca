// CIMS behaviour that needs script. No inline script anywhere: the Content-Security-Policy forbids it.
(function () {
  "use strict";
  // A rate-limited search (HTTP 429, cims.hardening) answers htmx with a short message: show it
  // where the results would have gone instead of dropping it as an error.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 429) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Confirm destructive actions marked with data-confirm.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  // A link or redirect to page#tab-x opens that Bootstrap tab (e.g. the 360 page's Files tab).
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.location.hash || !window.bootstrap) {
      return;
    }
    var selector = '[data-bs-toggle="tab"][data-bs-target="' + CSS.escape(window.location.hash) + '"]';
    var trigger = document.querySelector(selector);
    if (trigger) {
      window.bootstrap.Tab.getOrCreateInstance(trigger).show();
    }
  });
  // A header checkbox with data-select-all="NAME" ticks every checkbox named NAME on the page.
  document.addEventListener("change", function (event) {
    var box = event.target;
    var name = box.getAttribute && box.getAttribute("data-select-all");
    if (!name) {
      return;
    }
    document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (item) {
      item.checked = box.checked;
    });
  });
  // The pipeline board: drag an open opportunity's card onto another column. An open stage posts
  // the move (the same request as the card's buttons) and swaps in the refreshed board; 赢单 and
  // 输单 open the win or lose page, which ask for what those steps need. The buttons stay for
  // keyboards and touch screens.
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest("[data-move-url]");
    if (!card) {
      return;
    }
    dragged = card;
    card.classList.add("opacity-50");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
  });
  document.addEventListener("dragend", function () {
    if (dragged) {
      dragged.classList.remove("opacity-50");
    }
    dragged = null;
    document.querySelectorAll(".cims-drop-target").forEach(function (column) {
      column.classList.remove("cims-drop-target");
    });
  });
  function dropColumn(event) {
    var column = event.target.closest && event.target.closest("[data-drop-stage]");
    if (!dragged || !column || column.contains(dragged)) {
      return null;
    }
    return column;
  }
  document.addEventListener("dragover", function (event) {
    var column = dropColumn(event);
    if (column) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      column.classList.add("cims-drop-target");
    }
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest("[data-drop-stage]");
    if (column && !column.contains(event.relatedTarget)) {
      column.classList.remove("cims-drop-target");
    }
  });
  document.addEventListener("drop", function (event) {
    var column = dropColumn(event);
    if (!column) {
      return;
    }
    event.preventDefault();
    var card = dragged;
    var stage = column.getAttribute("data-drop-stage");
    if (stage === "won") {
      window.location.href = card.getAttribute("data-win-url");
      return;
    }
    if (stage === "lost") {
      window.location.href = card.getAttribute("data-lose-url");
      return;
    }
    var token = card.querySelector("input[name=csrfmiddlewaretoken]");
    var values = { stage: stage };
    var rep = card.getAttribute("data-rep");
    if (rep) {
      values.rep = rep;
    }
    window.htmx.ajax("POST", card.getAttribute("data-move-url"), {
      target: "#pipeline-board",
      swap: "innerHTML",
      values: values,
      headers: { "X-CSRFToken": token ? token.value : "" },
    });
  });
})();
