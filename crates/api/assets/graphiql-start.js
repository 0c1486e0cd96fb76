// Starts GraphiQL on Tandem's /graphiql page. Served from the binary like
// the GraphiQL and React bundles it uses, so the page needs no network
// beyond the Tandem server (its Content-Security-Policy allows nothing
// else). The endpoints come from the page's JSON configuration block.
//
// Tandem takes the token of a websocket from the payload of
// `connection_init`, not from headers, so subscriptions are sent over a
// websocket whose payload carries the `Authorization` of GraphiQL's headers
// editor; one socket is kept per distinct Authorization.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("tandem-graphiql-config").textContent);

  function absolute(path, websocket) {
    var url = new URL(path, window.location.href);
    if (websocket) {
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    }
    return url.toString();
  }

  function authorization(headers) {
    if (!headers) {
      return null;
    }
    for (var name in headers) {
      if (name.toLowerCase() === "authorization" && headers[name]) {
        return String(headers[name]);
      }
    }
    return null;
  }

  function fetcherFor(auth) {
    var options = {
      url: absolute(config.url, false),
      fetch: function (url, init) {
        return window.fetch(url, Object.assign({}, init, { credentials: "same-origin" }));
      },
    };
    if (config.subscriptionUrl) {
      options.subscriptionUrl = absolute(config.subscriptionUrl, true);
      options.wsConnectionParams = auth ? { authorization: auth } : {};
    }
    return GraphiQL.createFetcher(options);
  }

  var fetchers = new Map();
  function fetcher(params, options) {
    var auth = authorization(options && options.headers);
    var key = auth || "";
    if (!fetchers.has(key)) {
      fetchers.set(key, fetcherFor(auth));
    }
    return fetchers.get(key)(params, options);
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
    }),
  );
})();
