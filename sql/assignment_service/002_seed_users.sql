-- The ten accounts of the original (demo password pass123, stored as argon2id hashes,
-- each with its own salt). Operators get their load row.
INSERT INTO users (id, username, name, role, region, password_hash) VALUES
    (1, 'john.smith', 'John Smith', 'operator', 'US', '$argon2id$v=19$m=65536,t=3,p=4$BBChEJG3EsrwgRkH5ISNEA$SUvdSknSyDc4XQkywxsLMnBT7z4O1/BaeHknoF48Gi4'),
    (2, 'emma.wilson', 'Emma Wilson', 'supervisor', 'EU', '$argon2id$v=19$m=65536,t=3,p=4$NvQbbRz54GQalmmMzVh7JQ$Hg28nConNxa7/7vRKwAtLX28LZRZdwku4G+3IzHq5jY'),
    (3, 'carlos.garcia', 'Carlos Garcia', 'operator', 'LATAM', '$argon2id$v=19$m=65536,t=3,p=4$VgCGpdjvEVygUzUNSbkPQQ$wK7gddJ4M2835UL8M8MNOSqYR8khH27C1fmEFnxkBos'),
    (4, 'liu.yang', 'Liu Yang', 'operator', 'APAC', '$argon2id$v=19$m=65536,t=3,p=4$+PZJ8HUFmtUA7s8D5QabEw$8LvFkBZs/O4+YHW4RQ0llLd14mLccSerTV7ixZImIYU'),
    (5, 'sarah.connor', 'Sarah Connor', 'supervisor', 'US', '$argon2id$v=19$m=65536,t=3,p=4$FSQXgjmDYhiock+WOsjbyQ$ROOLIY9P0R6yqFqFUZhnc4HJJlt9N4kJzEV//xiMJcc'),
    (6, 'mike.ross', 'Mike Ross', 'operator', 'EU', '$argon2id$v=19$m=65536,t=3,p=4$DwxxGL1G651d74B/g6oIVg$RlljirIDqBRgCiDEtpmI/j42+Abt+vXzsvXr4eeYbgU'),
    (7, 'ana.silva', 'Ana Silva', 'operator', 'LATAM', '$argon2id$v=19$m=65536,t=3,p=4$k8jcDT5DbA0ics17KIVLWQ$gzFxCvd/gw4aRFyxLFl3hYk+TGwoApq+oRl7q0+9avU'),
    (8, 'raj.patel', 'Raj Patel', 'supervisor', 'APAC', '$argon2id$v=19$m=65536,t=3,p=4$w+YB1PliHMJUE1UZoGc6ew$X6/oh+DCQkI64Z2I6rvT7+BX2YYaDM6wTlWQXxRzeB4'),
    (9, 'marie.dubois', 'Marie Dubois', 'operator', 'EU', '$argon2id$v=19$m=65536,t=3,p=4$Vu7Nj/lTTa6nZArBbwpHqw$MeTStBI+bgoUGYlNlsYbQpnx6UBJ0J4y5fj8BehN/WU'),
    (10, 'james.wilson', 'James Wilson', 'supervisor', 'US', '$argon2id$v=19$m=65536,t=3,p=4$EnR2ymQj2jcIsDdfSsTnkA$bFKaxmBffOkcMEEP+AldbdmMK6Z21Foxdv8pcAVJVd0')
ON CONFLICT (id) DO NOTHING;

INSERT INTO operator_load (user_id)
SELECT id FROM users WHERE role = 'operator'
ON CONFLICT (user_id) DO NOTHING;
