// A page that answers a POST (a confirmation) names the page its action started from in
// data-history-url. This entry of the browser's history takes that address, so Back from
// what follows returns there (a GET) instead of asking to send the form again, and a
// reload shows that page rather than resending anything.
(function () {
  var marked = document.querySelector("[data-history-url]");
  if (!marked || !window.history || !window.history.replaceState) { return; }
  var url = marked.getAttribute("data-history-url") || "";
  if (url.charAt(0) === "/" && url.charAt(1) !== "/") {
    window.history.replaceState(null, "", url);
  }
})();
