// Tells the server the browser's time zone, so times are shown in it (UTC on hover).
// Signed in: stored for the member when it differs from the zone the page was drawn in,
// and the times already on this page are redrawn in it. Before sign-in: a cookie.
(function () {
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) { return; /* old browser: times stay in UTC */ }
  if (!zone) { return; }
  if (document.cookie.indexOf("tz=" + zone) === -1) {
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
  }
  var body = document.body;
  var url = body && body.getAttribute("data-time-zone-url");
  if (!url || body.getAttribute("data-time-zone") === zone) { return; }
  var form = new URLSearchParams();
  form.set("time_zone", zone);
  form.set("csrf", body.getAttribute("data-csrf") || "");
  fetch(url, {
    method: "POST", body: form, credentials: "same-origin",
    headers: {"Accept": "application/json"}
  }).then(function (response) {
    if (!response.ok) { return; }
    body.setAttribute("data-time-zone", zone);
    redraw(zone);
  }).catch(function () { /* offline: the next page tries again */ });

  function redraw(zone) {
    var format = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
    });
    var times = document.querySelectorAll("time[datetime][title]");
    for (var i = 0; i < times.length; i++) {
      var at = new Date(times[i].getAttribute("datetime"));
      if (isNaN(at.getTime())) { continue; }
      var parts = {};
      format.formatToParts(at).forEach(function (p) { parts[p.type] = p.value; });
      times[i].textContent = parts.year + "-" + parts.month + "-" + parts.day + " " +
        parts.hour + ":" + parts.minute + " " + (parts.timeZoneName || "");
    }
  }
})();
