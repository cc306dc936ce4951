/*
 * Test probes (loaded first, from the app's own origin, so the CSP allows it):
 * records the browser's own CSP violation reports into the page, and tries
 * eval and new Function, writing what happened into the DOM.
 */
(function () {
  "use strict";
  const violations = [];

  function render() {
    const list = document.getElementById("violations");
    if (!list) return;
    list.replaceChildren(
      ...violations.map((v) => {
        const li = document.createElement("li");
        li.dataset.directive = v.directive;
        li.dataset.blocked = v.blocked;
        li.textContent = `${v.directive} blocked ${v.blocked} (${v.disposition})`;
        return li;
      }),
    );
    document.documentElement.dataset.violations = String(violations.length);
  }

  document.addEventListener("securitypolicyviolation", (e) => {
    violations.push({
      directive: e.effectiveDirective || e.violatedDirective,
      blocked: e.blockedURI || "",
      disposition: e.disposition,
    });
    render();
  });

  function attempt(id, fn) {
    const node = document.getElementById(id);
    try {
      const value = fn();
      node.textContent = `ran: ${value}`;
      node.dataset.outcome = "ran";
    } catch (e) {
      node.textContent = `${e.name}: ${e.message}`;
      node.dataset.outcome = e.name;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    render();
    // indirect eval: the CSP has no 'unsafe-eval', so both must throw EvalError
    attempt("eval-result", () => (0, eval)("6 * 7"));
    attempt("function-result", () => new Function("return 6 * 7")());
  });
})();
