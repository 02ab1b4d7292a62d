// A form that htmx answers by replacing the part of the page it sits in took the focus
// with it: the button pressed was gone, the focus fell to the page, and a keyboard user
// tabbed back through everything to reach the answer. A form marked
// data-focus-after="SELECTOR" gives the focus, once its answer is in place, to what it
// refused first (its error summary, else its first field marked aria-invalid) or, when
// nothing was refused, to SELECTOR (the answer's heading, tabindex="-1").
(function () {
  function place(event) {
    var config = event.detail && event.detail.requestConfig;
    var form = config && config.elt;
    if (!form || !form.matches || !form.matches("form[data-focus-after]")) { return; }
    if (!document.body.contains(form)) { return; }
    var target = form.querySelector(".error-summary") ||
      form.querySelector('[aria-invalid="true"]') ||
      document.querySelector(form.getAttribute("data-focus-after"));
    if (target && document.activeElement !== target) { target.focus(); }
  }
  document.addEventListener("htmx:afterSettle", place);
})();
