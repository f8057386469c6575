/* Amounts are shown to the cent; the exact value the ledger keeps is in data-exact (and the
   title, for a mouse). Tapping or pressing Enter on an amount switches it between the two,
   so the exact value is reachable on touch screens and by keyboard too. No dependencies. */
(function () {
  "use strict";

  function toggle(amount) {
    var shown = amount.getAttribute("data-shown");
    if (shown === null) {
      amount.setAttribute("data-shown", amount.textContent);
      amount.textContent = amount.getAttribute("data-exact") + " " + (amount.getAttribute("data-currency") || "");
      amount.setAttribute("aria-pressed", "true");
    } else {
      amount.textContent = shown;
      amount.removeAttribute("data-shown");
      amount.setAttribute("aria-pressed", "false");
    }
  }

  function init() {
    var amounts = document.querySelectorAll("span.money[data-exact]");
    for (var i = 0; i < amounts.length; i++) {
      var amount = amounts[i];
      amount.setAttribute("tabindex", "0");
      amount.setAttribute("role", "button");
      amount.setAttribute("aria-pressed", "false");
      amount.addEventListener("click", function (event) {
        if (event.target.closest("a")) return; // a linked amount keeps its link
        toggle(event.currentTarget);
      });
      amount.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          toggle(event.currentTarget);
        }
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
