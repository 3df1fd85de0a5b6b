-- The ten accounts of the original (demo password pass123, stored as argon2id hashes,
-- each with its own salt). Operators get their load row.
INSERT INTO users (id, username, name, role, region, password_hash) VALUES
    (1, 'john.smith', 'John Smith', 'operator', 'US', '$argon2id$v=19$m=19456,t=2,p=1$vq/75Xh4L+1+fHQubBs+jQ$pwdviRd5C2R8IzOeCwP4S4MAs4dTDHPRMN+wbRUPS9U'),
    (2, 'emma.wilson', 'Emma Wilson', 'supervisor', 'EU', '$argon2id$v=19$m=19456,t=2,p=1$TxDLHmG+gOXM84L3K8z8dg$Z0/AOz1MDprmU4BZye2TUU1+OagZg15ajH1cjLlc+K4'),
    (3, 'carlos.garcia', 'Carlos Garcia', 'operator', 'LATAM', '$argon2id$v=19$m=19456,t=2,p=1$bPBymx5UCPVtf9Rzhuk1VA$ZZF6I98nm1EukyLU43K9cvB932BAaKxAWgKtIHlgMSk'),
    (4, 'liu.yang', 'Liu Yang', 'operator', 'APAC', '$argon2id$v=19$m=19456,t=2,p=1$3VYMOwfuJdvK6PedSPLD2w$JbJ/t3Ccs6ToGeDyOaPPyVjxiMRD3pIGeKlbf9gLcAo'),
    (5, 'sarah.connor', 'Sarah Connor', 'supervisor', 'US', '$argon2id$v=19$m=19456,t=2,p=1$vnAybQlLZiClAfqA9+AgLQ$rjr11VmJzYLuAc522J8HWMJ7Dzk8d6YlX/jq24hWZpk'),
    (6, 'mike.ross', 'Mike Ross', 'operator', 'EU', '$argon2id$v=19$m=19456,t=2,p=1$T/eN1X9l9xS2NizUzlxSWw$G+ES8Pdqzkx24iGUDojD0LUyDWEqkIIFKda0yh+ud4g'),
    (7, 'ana.silva', 'Ana Silva', 'operator', 'LATAM', '$argon2id$v=19$m=19456,t=2,p=1$uvICfYF8j0zbIkPEZFOrkQ$ajKfFhLBN7CfwM2vP6q6mZ98fdqzvJx5PqpqEfcuP2w'),
    (8, 'raj.patel', 'Raj Patel', 'supervisor', 'APAC', '$argon2id$v=19$m=19456,t=2,p=1$Sm7/8BfCst5zRjQQAcdt8A$3+4QUzeuOVrI4eGuL7WZOAf+HkAwdHzk+MwKsZNeHfU'),
    (9, 'marie.dubois', 'Marie Dubois', 'operator', 'EU', '$argon2id$v=19$m=19456,t=2,p=1$GhlM2xYzICBDmp4uKo6r4w$NAVvTmK4PPPHYeiyUw+i3gc/bTq7YmFTeZTYJlU/CVw'),
    (10, 'james.wilson', 'James Wilson', 'supervisor', 'US', '$argon2id$v=19$m=19456,t=2,p=1$f76AWQ5kgIDiXQhHpiYC7A$Hf1kMQPj8kxMDfSOPIpRBLPFzNaAJKjZA/zAVCbvyIg')
ON CONFLICT (id) DO NOTHING;

INSERT INTO operator_load (user_id)
SELECT id FROM users WHERE role = 'operator'
ON CONFLICT (user_id) DO NOTHING;
