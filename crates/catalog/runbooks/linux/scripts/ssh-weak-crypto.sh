# Detect: weak algorithms enabled in sshd's Ciphers, MACs and KexAlgorithms.
require_sshd
weak_re='3des|arcfour|blowfish|cast128|rc4|-cbc$|hmac-md5|-96$|umac-64|diffie-hellman-group1-|diffie-hellman-group14-sha1|diffie-hellman-group-exchange-sha1'
if sshd_t_cached; then
  # In a batch: the three options and the weak ones among them from one awk over `sshd -T`.
  found=$(awk -v re="$weak_re" '
    { k = tolower($1) }
    (k == "ciphers" || k == "macs" || k == "kexalgorithms") && !(k in v) { $1 = ""; sub(/^ /, ""); v[k] = tolower($0) }
    END {
      print v["ciphers"] "," v["macs"] "," v["kexalgorithms"] ","
      n = split(v["ciphers"] "," v["macs"] "," v["kexalgorithms"], a, ",")
      for (i = 1; i <= n; i++) if (a[i] ~ re && !(a[i] in seen)) { seen[a[i]] = 1; w[++m] = a[i] }
      for (i = 2; i <= m; i++) { x = w[i]; for (j = i - 1; j > 0 && w[j] > x; j--) w[j + 1] = w[j]; w[j + 1] = x }
      for (i = 1; i <= m; i++) print w[i]
    }' "$sshd_t_src")
  algorithms=${found%%
*}
  case "$found" in *"
"*) weak=${found#*
} ;; *) weak="" ;; esac
else
  algorithms=$(for option in ciphers macs kexalgorithms; do sshd_option "$option" ""; printf ','; done)
  weak=$(printf '%s' "$algorithms" | tr ',' '\n' | grep -E "$weak_re" | sort -u || true)
fi
json_lines "$weak"
printf '{"weak_algorithms":%s,"configured":%s}\n' "$json_array" "$(json_str "$algorithms")"
