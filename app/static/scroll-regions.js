// On a phone a table wider than the screen scrolls inside itself (app.css). A region that
// scrolls must be reachable by keyboard (WCAG 2.1.1; axe's scrollable-region-focusable):
// such a table takes the focus, and the arrow keys then scroll it. Checked again when the
// window changes size and when htmx puts new content in.
(function () {
  function mark() {
    document.querySelectorAll("main table").forEach(function (table) {
      var scrolls = table.scrollWidth > table.clientWidth + 1;
      if (scrolls && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        table.setAttribute("data-scroll-region", "");
      } else if (!scrolls && table.hasAttribute("data-scroll-region")) {
        table.removeAttribute("tabindex");
        table.removeAttribute("data-scroll-region");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
  document.addEventListener("htmx:afterSettle", mark);
})();
