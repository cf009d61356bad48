\set pick random(1, 100)
\set sender random(1, :users)
\set receiver 1 + (:sender + random(0, :users - 2)) % :users
\if :pick <= :hot_percent / 2
\set sender 1
\elif :pick <= :hot_percent
\set receiver 1
\endif
\if :sender = :receiver
\set receiver 2
\endif
\set key random(1, 9000000000000000000)
