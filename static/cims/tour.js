// The guided tour card (templates/_partials/tour.html). The server renders the steps (hidden) for
// as long as the user has not finished or skipped the tour; this script decides whether to show
// the card and which step.
//
// The card is offered on the first staff page of a browser session. It follows the user to other
// pages only once they engage with it (Next, Back, "Go there") or restarted it from the menu: a
// user who ignores the offer is left alone until the next session, and the card never sits over
// the pages of someone who is busy elsewhere.
(function () {
  "use strict";

  function storageKey(card) {
    return "cims-tour:" + (card.getAttribute("data-user") || "");
  }

  function load(key) {
    try {
      var state = JSON.parse(window.sessionStorage.getItem(key) || "null");
      return state && typeof state === "object" ? state : null;
    } catch (error) {
      return null;
    }
  }

  function save(key, state) {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(state));
    } catch (error) {
      // Storage refused (private browsing): the card then only shows on the page it was offered on.
    }
  }

  function forget(key) {
    try {
      window.sessionStorage.removeItem(key);
    } catch (error) {
      // Nothing was stored.
    }
  }

  function start() {
    var card = document.getElementById("cims-tour");
    if (!card) {
      return;
    }
    var key = storageKey(card);
    var state = load(key);
    if (card.getAttribute("data-restarted") === "true") {
      state = { mode: "active", step: 0 };
    } else if (!state) {
      state = { mode: "offered", step: 0 };
    } else if (state.mode !== "active") {
      // Offered on an earlier page and not taken up: stay out of the way.
      card.setAttribute("data-ready", "true");
      return;
    }
    var steps = card.querySelectorAll("[data-tour-step]");
    var counter = card.querySelector("[data-tour-counter]");
    var back = card.querySelector("[data-tour-back]");
    var next = card.querySelector("[data-tour-next]");
    var finish = card.querySelector("[data-tour-finish]");
    var current = Math.min(Math.max(parseInt(state.step, 10) || 0, 0), steps.length - 1);

    function show(index, engaged) {
      current = index;
      steps.forEach(function (step, position) {
        step.hidden = position !== index;
      });
      counter.textContent = index + 1 + " / " + steps.length;
      back.disabled = index === 0;
      next.hidden = index === steps.length - 1;
      finish.hidden = index !== steps.length - 1;
      card.setAttribute("data-current-step", String(index));
      if (engaged) {
        state.mode = "active";
      }
      state.step = index;
      save(key, state);
    }

    back.addEventListener("click", function () {
      show(Math.max(current - 1, 0), true);
    });
    next.addEventListener("click", function () {
      show(Math.min(current + 1, steps.length - 1), true);
    });
    card.querySelectorAll("[data-tour-go]").forEach(function (link) {
      link.addEventListener("click", function () {
        show(current, true);
      });
    });
    card.querySelectorAll("form[data-tour-done]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var token = form.querySelector("input[name=csrfmiddlewaretoken]");
        card.hidden = true;
        document.body.classList.remove("cims-tour-open");
        forget(key);
        window
          .fetch(card.getAttribute("data-tour-done-url"), {
            method: "POST",
            credentials: "same-origin",
            headers: { "X-CSRFToken": token ? token.value : "", "X-Requested-With": "fetch" },
          })
          .then(function (response) {
            if (!response.ok) {
              // Not recorded (e.g. the session ended): post the form the ordinary way instead.
              form.submit();
            }
          })
          .catch(function () {
            form.submit();
          });
      });
    });
    show(current, false);
    card.hidden = false;
    // Room below the page's last element, so that it can always be scrolled clear of the card.
    document.body.classList.add("cims-tour-open");
    card.setAttribute("data-ready", "true");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
