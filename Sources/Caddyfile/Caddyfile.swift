// Caddyfile module
