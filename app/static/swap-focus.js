// A form that htmx answers by replacing the part of the page it sits in took the focus
// with it: the button pressed was gone, the focus fell to the page, and a keyboard user
// tabbed back through everything to reach the answer. A form marked
// data-focus-after="SELECTOR" gives the focus, once its answer is in place, to what it
// refused first (its error summary, else its first field marked aria-invalid) or, when
// nothing was refused, to SELECTOR (the answer's heading, tabindex="-1").
//
// A link that htmx replaces with what it loads ("More sub-units": the next rows), marked
// data-focus-new, gives the focus to the first thing put in its place.
//
// A form refused without htmx comes back as a new page, which a screen reader starts
// reading from the top: the focus goes to its first field marked aria-invalid (described by
// its error) or, when the refusal names no field, to the error banner or summary, unless
// something already has the focus.
(function () {
  function refused() {
    if (document.activeElement && document.activeElement !== document.body) { return; }
    var target = document.querySelector('main [aria-invalid="true"]') ||
      document.querySelector(".error-banner, main form .error-summary");
    if (!target) { return; }
    if (!/^(input|select|textarea|button)$/i.test(target.tagName) && !target.hasAttribute("tabindex")) {
      target.setAttribute("tabindex", "-1");
    }
    target.focus();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", refused);
  } else {
    refused();
  }

  var places = new WeakMap();  // link -> where its replacement goes (parent, node before)

  function focusFirst(element) {
    if (!element.hasAttribute("tabindex")) { element.setAttribute("tabindex", "-1"); }
    element.focus();
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail && event.detail.requestConfig;
    var link = config && config.elt;
    var target = event.detail.target;
    if (!link || !link.hasAttribute || !link.hasAttribute("data-focus-new") || !target) { return; }
    places.set(link, { parent: target.parentNode, before: target.previousElementSibling });
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var config = event.detail && event.detail.requestConfig;
    var link = config && config.elt;
    var place = link && places.get(link);
    if (!place) { return; }
    places.delete(link);
    var first = place.before ? place.before.nextElementSibling : place.parent.firstElementChild;
    if (first) { focusFirst(first); }
  });

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
