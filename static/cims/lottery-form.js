// The lottery form's prize table: "Add a row" appends an empty tier row from the formset's template
// (without script the form still offers a few blank rows).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector("[data-tier-add]");
    var rows = document.querySelector("[data-tier-rows]");
    var template = document.querySelector("[data-tier-template]");
    var total = document.querySelector('input[name="tiers-TOTAL_FORMS"]');
    var max = document.querySelector('input[name="tiers-MAX_NUM_FORMS"]');
    if (!button || !rows || !template || !total) {
      return;
    }
    button.classList.remove("d-none");
    button.addEventListener("click", function () {
      var count = parseInt(total.value, 10) || 0;
      var limit = max ? parseInt(max.value, 10) || 50 : 50;
      if (count >= limit) {
        button.disabled = true;
        return;
      }
      var html = template.innerHTML.replace(/__prefix__/g, String(count));
      rows.insertAdjacentHTML("beforeend", html);
      total.value = String(count + 1);
      var first = rows.lastElementChild && rows.lastElementChild.querySelector("input");
      if (first) {
        first.focus();
      }
      if (count + 1 >= limit) {
        button.disabled = true;
      }
    });
  });
})();
