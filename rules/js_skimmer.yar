/*
 * mamori rules: JavaScript card skimmers (Magecart style): listeners on the card form
 * that serialise what was typed and send it to a third party without waiting for an
 * answer. Meta as in php_webshell.yar. A gateway's own tokenisation script reads the card
 * fields and posts them too, but it reads the answer (the token); a skimmer does not.
 */

rule mamori_js_skimmer_card_fields_exfil
{
    meta:
        description = "a script that listens on the card form, serialises the card fields and sends them out (Image().src, fetch, sendBeacon, XMLHttpRequest, WebSocket) without reading an answer"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $f1 = /['"\[.](card[_-]?(number|num|no|cvv|cvc|cvv2|exp)|cc[_-]?(number|num|cid|cvv|exp)|ccnum|cvv2?|security[_-]?code)['"\]]/ nocase
        $f2 = /\.card[_-]?(number|num|cvv|cvc)\b/ nocase
        $f3 = /\/\^?\(?\\d\{1[2-6],\s?1[5-9]\}/
        $f4 = /(card|cc[_-]?|cvv|cvc)\|(card|cc[_-]?|cvv|cvc|exp)/ nocase
        $l1 = /addEventListener\s*\(\s*['"](blur|change|submit|click|input|keyup|keydown|focusout|mouseup)['"]/
        $l2 = /\.on\s*\(\s*['"](blur|change|submit|click|input|keyup|keydown|focusout)['"]/
        $l3 = /\.(onsubmit|onclick|onchange|onblur)\s*=/
        $n1 = /new\s+Image\s*(\(\s*\))?\s*\)?\s*\.\s*src\s*=/
        $n2 = /navigator\.sendBeacon\s*\(/
        $n3 = /[^\w.]fetch\s*\(/
        $n4 = /new\s+WebSocket\s*\(/
        $n5 = /new\s+XMLHttpRequest\s*\(/
        $s1 = /[^\w.]btoa\s*\(/
        $s2 = "JSON.stringify("
        $s3 = /\.join\s*\(\s*['"][|;:,&]['"]\s*\)/
        $s4 = /encodeURIComponent\s*\([^)]{0,40}\.value/
        $s5 = "new FormData("
        $answer = /\.then\s*\(|onreadystatechange|\.onload\s*=|\.responseText|\.json\s*\(\s*\)/
    condition:
        any of ($f*) and any of ($l*) and any of ($n*) and any of ($s*) and not $answer
}

rule mamori_js_skimmer_form_to_third_party
{
    meta:
        description = "a script that serialises the whole payment or checkout form on submit and posts it to an absolute URL with no-cors/keepalive (fire and forget)"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        $form = /(payment|checkout|billing|onepage|shopping)[^'"\n]{0,40}['"]/ nocase
        $ser = /new\s+FormData\s*\(|\.serialize(Array)?\s*\(\s*\)|querySelectorAll\s*\(\s*['"](input|form input|select)/
        $listen = /addEventListener\s*\(\s*['"](submit|click|change)['"]|\.on\s*\(\s*['"](submit|click|change)['"]/
        $send = /(fetch|sendBeacon)\s*\(\s*['"](https?:)?\/\/[^'"]{4,}['"][^;]{0,200}(no-cors|keepalive)/s
        $send2 = /(fetch|sendBeacon)\s*\(\s*['"](https?:)?\/\/[^'"]{4,}['"]\s*\+\s*btoa\s*\(/
    condition:
        $listen and $ser and (($form and $send) or $send2)
}

rule mamori_js_skimmer_hidden_fields
{
    meta:
        description = "card field names hidden in a script as hex escapes (card_ spelled x63 x61 x72 x64 x5f) or inside a base64 blob that is decoded and run"
        kind = "malware.skimmer"
        tier = "confirmed"
        severity = "critical"
        author = "mamori"
    strings:
        // "card_" / "cc_num" / "cvv" in \xNN escapes
        $hex_card = /\\x63\\x61\\x72\\x64\\x5f|\\x63\\x63\\x5f\\x6e\\x75\\x6d|\\x63\\x76\\x76/ nocase
        // card field names inside a base64 blob that is decoded and run
        $b64_1 = "card_number" base64
        $b64_2 = "cc_number" base64
        $b64_3 = "card_cvv" base64
        $dec = /(atob|base64_decode)\s*\(/
        $run = /(eval|new\s+Function|Function|assert)\s*\(/
        $net = /new\s+Image|sendBeacon|fetch\s*\(|XMLHttpRequest|WebSocket|addEventListener/
    condition:
        ($hex_card and $net) or (any of ($b64_*) and $dec and $run)
}
