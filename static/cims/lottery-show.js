// The big screen (大屏) of the year-end lottery: a tier at a time, names rolling, then the winners.
//
// Keyboard only: Space or → goes one step forward, ← back to the previous tier's winners, F full
// screen, H or ? the key help. The draw itself is made once by the server (POST to draw_url, the
// first time Space is pressed on an event not drawn yet); this script never sends two at once, and
// a 409 carries the result already drawn, which it reveals just the same. Everything it shows is
// masked on the server. No library, no network beyond that one request: it runs offline in a hall.
(function () {
  "use strict";

  var source = document.getElementById("show-data");
  var stage = document.getElementById("show-stage");
  if (!source || !stage) {
    return;
  }
  var data = JSON.parse(source.textContent);
  var labels = data.labels || {};
  var statusLine = document.getElementById("show-status");
  var help = document.getElementById("show-help");
  var canvas = document.getElementById("show-confetti");
  var tokenMeta = document.querySelector("meta[name=csrf-token]");
  var reducedMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)");

  var PAGE_SIZE = 60; // cards on one page of a large tier
  var ROLL_MS = 2600; // how long the names roll before the winners appear
  var ROLL_SLOTS = 10; // at most this many rolling names at once

  var tiers = data.tiers || [];
  var drawn = Boolean(data.drawn);
  var pool = shuffled((data.pool || []).slice());
  if (!pool.length) {
    pool = [{ name: "***", phone: "" }];
  }

  // Where the show stands: the tier, and whether it is introduced, rolling, revealed (which page) or
  // the closing screen. `revealed` remembers the tiers already shown, so going back and forth never
  // rolls a tier twice.
  var state = { kind: "intro", tier: 0, page: 0 };
  var revealed = {};
  var requesting = false;
  var rollTimer = null;

  function reduced() {
    return Boolean(reducedMotion && reducedMotion.matches);
  }

  // Visual only: the order the sample of masked names cycles in. (The draw is the server's.)
  function shuffled(list) {
    for (var i = list.length - 1; i > 0; i--) {
      var j = Math.floor(Math.random() * (i + 1));
      var item = list[i];
      list[i] = list[j];
      list[j] = item;
    }
    return list;
  }

  function format(text, values) {
    return String(text || "").replace(/%\((\w+)\)s/g, function (whole, key) {
      return key in values ? String(values[key]) : whole;
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function setStatus(text, kind) {
    statusLine.textContent = text || "";
    statusLine.className = "show-status" + (kind ? " show-status-" + kind : "");
  }

  function pages(tier) {
    return Math.max(1, Math.ceil(tier.winners.length / PAGE_SIZE));
  }

  // --- Rendering ---------------------------------------------------------------------------------

  function tierHeader(index, compact) {
    var tier = tiers[index];
    var header = el("div", "show-tier" + (compact ? " show-tier-compact" : ""));
    header.appendChild(
      el("p", "show-tier-meta", format(labels.tier_of, { number: index + 1, count: tiers.length }))
    );
    var name = el("h2", "show-tier-name", tier.name);
    name.setAttribute("data-testid", "show-tier-name");
    header.appendChild(name);
    var line = el("p", "show-tier-prize");
    line.appendChild(el("span", "show-prize", tier.prize));
    line.appendChild(el("span", "show-quantity", format(labels.prizes, { count: tier.quantity })));
    header.appendChild(line);
    return header;
  }

  function render() {
    stopAutoScroll();
    stage.textContent = "";
    stage.setAttribute("data-state", state.kind);
    stage.setAttribute("data-tier", String(state.tier));
    if (state.kind === "closing") {
      renderClosing();
      return;
    }
    if (state.kind === "intro") {
      stage.appendChild(tierHeader(state.tier, false));
      var cta = el("p", "show-cta", drawn ? labels.press_space_reveal : labels.press_space);
      cta.setAttribute("data-testid", "show-cta");
      stage.appendChild(cta);
      return;
    }
    if (state.kind === "rolling") {
      stage.appendChild(tierHeader(state.tier, true));
      stage.appendChild(rollingBox());
      return;
    }
    renderWinners();
  }

  function rollingBox() {
    var tier = tiers[state.tier];
    var count = Math.max(1, Math.min(ROLL_SLOTS, tier.quantity));
    var box = el("div", "show-rolling show-rolling-" + (count === 1 ? "one" : count <= 4 ? "few" : "many"));
    box.setAttribute("data-testid", "show-rolling");
    for (var i = 0; i < count; i++) {
      var slot = el("div", "show-roll-slot");
      slot.appendChild(el("span", "show-roll-name"));
      slot.appendChild(el("span", "show-roll-phone"));
      box.appendChild(slot);
    }
    box.appendChild(el("p", "show-roll-caption", labels.rolling));
    return box;
  }

  // Card sizes from the largest down; a page starts at the size its count suggests and steps down
  // until it fits the screen (a projector's 1024×768 as well as a 4K wall).
  var SIZES = ["xl", "lg", "md", "sm", "xs", "xxs"];

  function sizeFor(count) {
    if (count <= 3) {
      return 0;
    }
    if (count <= 8) {
      return 1;
    }
    if (count <= 15) {
      return 2;
    }
    if (count <= 24) {
      return 3;
    }
    return 4;
  }

  function fit(grid, size) {
    while (stage.scrollHeight > stage.clientHeight + 1 && size < SIZES.length - 1) {
      grid.classList.remove("show-size-" + SIZES[size]);
      size += 1;
      grid.classList.add("show-size-" + SIZES[size]);
    }
  }

  function renderWinners() {
    var tier = tiers[state.tier];
    stage.appendChild(tierHeader(state.tier, true));
    if (!tier.winners.length) {
      stage.appendChild(el("p", "show-empty", labels.no_winners));
      stage.appendChild(el("p", "show-cta show-cta-small", labels.next));
      return;
    }
    var shown = tier.winners.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    var size = sizeFor(shown.length);
    var grid = el("div", "show-winners show-size-" + SIZES[size]);
    grid.setAttribute("data-testid", "show-winners");
    shown.forEach(function (winner, i) {
      var card = el("div", "show-card");
      card.setAttribute("data-testid", "show-winner");
      card.style.animationDelay = Math.min(i * 40, 1200) + "ms";
      card.appendChild(el("span", "show-card-name", winner.name));
      card.appendChild(el("span", "show-card-phone", winner.phone));
      card.appendChild(el("span", "show-card-entry", "#" + winner.position + " · " + labels.entry + " " + winner.entry_id));
      grid.appendChild(card);
    });
    stage.appendChild(grid);
    var total = pages(tier);
    if (total > 1) {
      var pageLine = el("p", "show-page", format(labels.page, { page: state.page + 1, pages: total }));
      pageLine.setAttribute("data-testid", "show-page");
      stage.appendChild(pageLine);
    }
    fit(grid, size);
  }

  function renderClosing() {
    var box = el("div", "show-closing");
    var thanks = el("h2", "show-thanks", labels.thanks);
    thanks.setAttribute("data-testid", "show-thanks");
    box.appendChild(thanks);
    box.appendChild(el("p", "show-closing-sub", labels.all_winners));
    var list = el("div", "show-closing-list");
    list.setAttribute("data-testid", "show-closing-list");
    list.tabIndex = 0;
    tiers.forEach(function (tier) {
      var section = el("section", "show-closing-tier" + (tier.winners.length > 12 ? " show-closing-tier-wide" : ""));
      var heading = el("h3", null, tier.name);
      heading.appendChild(el("small", null, tier.prize));
      section.appendChild(heading);
      if (!tier.winners.length) {
        section.appendChild(el("p", "show-closing-none", labels.no_winners));
      }
      var names = el("ol", "show-closing-names");
      tier.winners.forEach(function (winner) {
        var item = el("li");
        item.appendChild(el("span", "show-closing-name", winner.name));
        item.appendChild(el("span", "show-closing-phone", winner.phone));
        names.appendChild(item);
      });
      section.appendChild(names);
      list.appendChild(section);
    });
    box.appendChild(list);
    stage.appendChild(box);
    autoScroll(list);
  }

  // A long list of winners scrolls by itself, slowly, like credits; ↑ or ↓ takes over.
  var scrolling = null;

  function stopAutoScroll() {
    if (scrolling) {
      window.clearTimeout(scrolling.timer);
      scrolling.stopped = true;
      scrolling = null;
    }
  }

  function autoScroll(list) {
    stopAutoScroll();
    if (reduced()) {
      return;
    }
    var run = { stopped: false, timer: 0 };
    var position = 0;
    var last = 0;
    function step(now) {
      if (run.stopped || !list.isConnected) {
        return;
      }
      if (last) {
        position += ((now - last) / 1000) * Math.max(24, window.innerHeight / 30);
        list.scrollTop = position;
      }
      last = now;
      if (list.scrollTop + list.clientHeight < list.scrollHeight - 1) {
        window.requestAnimationFrame(step);
      }
    }
    run.timer = window.setTimeout(function () {
      if (list.scrollHeight > list.clientHeight) {
        window.requestAnimationFrame(step);
      }
    }, 4000);
    scrolling = run;
  }

  // --- The names rolling -------------------------------------------------------------------------

  var poolIndex = 0;

  function nextName() {
    poolIndex = (poolIndex + 1) % pool.length;
    return pool[poolIndex];
  }

  function startRolling() {
    state = { kind: "rolling", tier: state.tier, page: 0 };
    render();
    if (reduced()) {
      reveal();
      return;
    }
    var slots = stage.querySelectorAll(".show-roll-slot");
    var started = Date.now();
    function tick() {
      var elapsed = Date.now() - started;
      slots.forEach(function (slot) {
        var person = nextName();
        slot.firstChild.textContent = person.name;
        slot.lastChild.textContent = person.phone;
      });
      if (elapsed >= ROLL_MS) {
        rollTimer = null;
        reveal();
        return;
      }
      // Fast at first, then slowing down like a wheel: 40 ms growing to about 300 ms.
      var t = elapsed / ROLL_MS;
      rollTimer = window.setTimeout(tick, 40 + 260 * t * t);
    }
    tick();
  }

  function reveal() {
    revealed[state.tier] = true;
    state = { kind: "revealed", tier: state.tier, page: 0 };
    render();
    if (tiers[state.tier].winners.length) {
      confetti(state.tier === tiers.length - 1 || tiers[state.tier].quantity <= 3 ? 260 : 160);
    }
  }

  // --- The draw (once, on the server) ------------------------------------------------------------

  function applyResult(result) {
    if (result && Array.isArray(result.tiers) && result.tiers.length === tiers.length) {
      tiers = result.tiers;
    }
    drawn = true;
  }

  function draw() {
    if (requesting) {
      return;
    }
    requesting = true;
    setStatus(labels.drawing, "busy");
    stage.setAttribute("data-busy", "true");
    var status = 0;
    window
      .fetch(data.draw_url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": tokenMeta ? tokenMeta.content : "", Accept: "application/json" },
      })
      .then(function (response) {
        status = response.status;
        var type = response.headers.get("Content-Type") || "";
        return type.indexOf("application/json") === 0 ? response.json() : null;
      })
      .then(function (result) {
        if (status === 200 && result && result.ok) {
          applyResult(result);
          setStatus("");
          startRolling();
        } else if (status === 409 && result && result.drawn) {
          // Drawn already (another computer, an earlier press): the same fixed result, revealed.
          applyResult(result);
          setStatus(result.message || labels.already_drawn, "note");
          startRolling();
        } else if (result && result.message) {
          setStatus(result.message, "error");
        } else if (status === 403) {
          setStatus(labels.session_error, "error");
        } else {
          setStatus(format(labels.server_error, { status: status || "?" }), "error");
        }
      })
      .catch(function () {
        setStatus(labels.network_error, "error");
      })
      .then(function () {
        requesting = false;
        stage.removeAttribute("data-busy");
      });
  }

  // --- Steps -------------------------------------------------------------------------------------

  function forward() {
    if (requesting || state.kind === "rolling") {
      return;
    }
    if (state.kind === "intro") {
      if (!drawn) {
        draw();
        return;
      }
      setStatus("");
      startRolling();
      return;
    }
    if (state.kind === "revealed") {
      setStatus("");
      if (state.page + 1 < pages(tiers[state.tier])) {
        state = { kind: "revealed", tier: state.tier, page: state.page + 1 };
        render();
        confetti(90);
        return;
      }
      var next = state.tier + 1;
      if (next >= tiers.length) {
        state = { kind: "closing", tier: state.tier, page: 0 };
        render();
        confetti(320);
        return;
      }
      state = { kind: revealed[next] ? "revealed" : "intro", tier: next, page: 0 };
      render();
    }
  }

  function back() {
    if (requesting || state.kind === "rolling") {
      return;
    }
    setStatus("");
    if (state.kind === "closing") {
      state = { kind: "revealed", tier: tiers.length - 1, page: 0 };
    } else if (state.kind === "revealed" && state.page > 0) {
      state = { kind: "revealed", tier: state.tier, page: state.page - 1 };
    } else if (state.tier > 0) {
      state = { kind: "revealed", tier: state.tier - 1, page: 0 };
    } else {
      return;
    }
    render();
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else if (document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen().catch(function () {});
    }
  }

  function toggleHelp(force) {
    help.hidden = force === undefined ? !help.hidden : !force;
  }

  function scrollClosing(amount) {
    var list = stage.querySelector(".show-closing-list");
    if (list) {
      list.scrollBy({ top: amount, behavior: reduced() ? "auto" : "smooth" });
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var key = event.key;
    if (key === " " || key === "Spacebar" || key === "ArrowRight" || key === "PageDown") {
      event.preventDefault();
      if (!event.repeat) {
        forward();
      }
    } else if (key === "ArrowLeft" || key === "PageUp" || key === "Backspace") {
      event.preventDefault();
      if (!event.repeat) {
        back();
      }
    } else if (key === "f" || key === "F") {
      event.preventDefault();
      toggleFullscreen();
    } else if (key === "h" || key === "H" || key === "?") {
      event.preventDefault();
      toggleHelp();
    } else if (key === "Escape") {
      // The browser leaves full screen by itself; Esc also closes the help.
      toggleHelp(false);
      if (document.fullscreenElement) {
        document.exitFullscreen();
      }
    } else if (key === "ArrowDown" || key === "ArrowUp") {
      event.preventDefault();
      stopAutoScroll();
      scrollClosing(key === "ArrowDown" ? window.innerHeight / 3 : -window.innerHeight / 3);
    }
  });

  // --- Confetti: a small canvas particle system, gold and red ------------------------------------

  var COLORS = ["#ffd700", "#ffcc33", "#f6e27a", "#ff4d4d", "#e60012", "#fff3c4", "#ff9f1c"];
  var particles = [];
  var animating = false;
  var context = canvas && canvas.getContext ? canvas.getContext("2d") : null;

  function resizeCanvas() {
    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.floor(window.innerWidth * ratio);
    canvas.height = Math.floor(window.innerHeight * ratio);
    canvas.style.width = window.innerWidth + "px";
    canvas.style.height = window.innerHeight + "px";
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  function burst(x, y, count, angle, spread, speed) {
    for (var i = 0; i < count; i++) {
      var a = angle + (Math.random() - 0.5) * spread;
      var v = speed * (0.55 + Math.random() * 0.6);
      particles.push({
        x: x,
        y: y,
        vx: Math.cos(a) * v,
        vy: Math.sin(a) * v,
        w: 6 + Math.random() * 8,
        h: 4 + Math.random() * 6,
        rotation: Math.random() * Math.PI,
        spin: (Math.random() - 0.5) * 0.3,
        wobble: Math.random() * Math.PI * 2,
        color: COLORS[Math.floor(Math.random() * COLORS.length)],
        round: Math.random() < 0.25,
      });
    }
  }

  function confetti(amount) {
    if (!context || reduced()) {
      return;
    }
    resizeCanvas();
    var w = window.innerWidth;
    var h = window.innerHeight;
    var speed = Math.max(14, h / 45);
    burst(0, h, amount / 2, -Math.PI / 3, 0.9, speed);
    burst(w, h, amount / 2, (-2 * Math.PI) / 3, 0.9, speed);
    burst(w / 2, -20, amount / 3, Math.PI / 2, 2.4, speed / 4);
    if (!animating) {
      animating = true;
      window.requestAnimationFrame(frame);
    }
  }

  function frame() {
    var w = window.innerWidth;
    var h = window.innerHeight;
    context.clearRect(0, 0, w, h);
    particles = particles.filter(function (p) {
      return p.y < h + 40 && p.x > -60 && p.x < w + 60;
    });
    particles.forEach(function (p) {
      p.vy += 0.32; // gravity
      p.vx *= 0.985; // air
      p.vy *= 0.985;
      p.wobble += 0.12;
      p.x += p.vx + Math.sin(p.wobble) * 0.8;
      p.y += p.vy;
      p.rotation += p.spin;
      context.save();
      context.translate(p.x, p.y);
      context.rotate(p.rotation);
      context.fillStyle = p.color;
      if (p.round) {
        context.beginPath();
        context.arc(0, 0, p.h / 2, 0, Math.PI * 2);
        context.fill();
      } else {
        context.scale(1, Math.cos(p.wobble));
        context.fillRect(-p.w / 2, -p.h / 2, p.w, p.h);
      }
      context.restore();
    });
    if (particles.length) {
      window.requestAnimationFrame(frame);
    } else {
      animating = false;
      context.clearRect(0, 0, w, h);
    }
  }

  window.addEventListener("resize", function () {
    if (animating) {
      resizeCanvas();
    }
    if (state.kind === "revealed") {
      render(); // the cards find their size again (full screen, a different projector)
    }
  });

  // --- Start ---------------------------------------------------------------------------------------

  if (!tiers.length) {
    state = { kind: "closing", tier: 0, page: 0 };
  }
  render();
  document.body.setAttribute("data-ready", "true");
})();
