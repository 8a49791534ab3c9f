#
# Varnish as an edge cache in front of a live-smooth origin: Smooth Streaming, DASH and HLS.
#
# Replace the origin address 192.0.2.10:3000 below, then run (Varnish 6 or 7):
#
#   varnishd -a :80 -f /etc/varnish/live-smooth.vcl -s malloc,1G -s Transient=malloc,256M
#
# Players use the edge's host in place of the origin's, with the same paths:
# http://<edge>/live/ch1.isml/Manifest, …/.mpd, …/.m3u8.
#
# The origin says how long each answer may be kept, and this file keeps exactly that:
#   - a complete fragment or DASH/HLS segment: `public, max-age=<fragmentMaxAge>, immutable`
#   - the Smooth manifest, the MPD, the HLS playlists, and a Smooth fragment whose tfrf may still
#     announce more successors: `public, max-age=<half a fragment>` (`no-cache` for fragments under 1.9 s)
#   - content not available yet (412 for Smooth, 404 for DASH/HLS), a segment that left the window
#     (410), every other error and the DASH clock URL (`…/time`): `no-store`; init segments: `no-cache` with an ETag (revalidated, 304)
# Varnish coalesces concurrent misses of a URL by itself (one origin request, the others wait). What
# this file changes is what Varnish's built-in rules do with answers it may not keep: they become
# "hit-for-miss" objects for 120 s, and for those 120 s every request of that URL goes to the origin
# on its own, uncoalesced. A fragment that was asked for before it existed (412) would be fetched once
# per waiting player when it arrives. Here such objects live at most 1 s.

vcl 4.1;

backend origin {
    .host = "192.0.2.10";
    .port = "3000";
    .connect_timeout = 2s;
    # The origin holds a request for the newest fragment until the next one arrives (at most
    # `edgeWait`, 10 s).
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

sub vcl_recv {
    # Encoders push to the origin, never through the edge (see the end of the file for the alternative).
    if (req.method == "POST" && req.url ~ "(?i)\.isml/(events\([^/]*\)/)?streams\([^/]*\)/?(\?.*)?$") {
        return (synth(403, "Encoders push to the origin"));
    }
    # The origin reads no cookie or credentials on media URLs: a player's cookies for the site must
    # not make each request a pass (the built-in rule). Other paths keep theirs.
    if (req.url ~ "(?i)\.ism(l)?/") {
        unset req.http.Cookie;
    }
    # The built-in vcl_recv follows: GET and HEAD are looked up, other methods pass.
}

sub vcl_backend_response {
    if (bereq.uncacheable) {
        return (deliver);
    }
    # Not available yet (412: a Smooth fragment after the newest; 404: a DASH/HLS segment, or a point
    # not started). Kept half a second, as a normal object: players that poll for the next fragment are
    # coalesced into one origin request per half second, and see it at most 0.5 s after it arrived.
    if (beresp.status == 412 || beresp.status == 404) {
        set beresp.ttl = 0.5s;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        return (deliver);
    }
    # Anything else the origin says not to keep: passed to each player, and for 1 s (not 120 s) every
    # request of the URL goes to the origin.
    if (beresp.ttl <= 0s || beresp.http.Set-Cookie ||
        beresp.http.Cache-Control ~ "(?i)no-store|no-cache|private") {
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    # Manifests, playlists and fragments whose tfrf may grow live half a fragment. Once expired, one is
    # served at most another half fragment (one fragment duration old in all) while a single background
    # request refreshes it; `keep` lets that request be conditional (the origin answers 304 when
    # nothing changed).
    if (beresp.http.Cache-Control !~ "(?i)immutable") {
        set beresp.grace = beresp.ttl;
        set beresp.keep = 10s;
    }
    return (deliver);
}

sub vcl_deliver {
    # HIT (also a stale manifest served during its refresh) or MISS: what the edge did.
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

# Ingest through this edge instead (only where encoders cannot reach the origin): replace the 403 in
# vcl_recv with `return (pipe);`, which streams the POST as it arrives. Varnish then adds
# X-Forwarded-For, and the origin refuses forwarded pushes unless its encoders authenticate
# (ingestAuth tokens or Basic). A push sends continuously, but raise `pipe_timeout` (idle seconds,
# default 60) if an encoder may pause longer than that.
