2026-12-03T10:13:30.784Z gemrouted: warning: /tmp/graffinity.UPr3tF/r.conf is readable by others (mode 644) and the config holds 3 literal keys: use env: or file: keys, or chmod 600
2026-12-03T10:13:30.784Z gemrouted: serving /grtest-affinity-31246: 3 projects, 1 models, window 600000 ms, pid 31247
2026-12-03T10:13:30.784Z gemrouted: watching 1 file in 1 directory for changes
2026-12-03T10:13:30.785Z gemrouted: control socket /run/gemroute/grtest-affinity-31246.sock (mode 600)
2026-12-03T10:13:30.852Z gemrouted: stopping (removing the table)
2026-12-03T10:13:38.624Z gemrouted: warning: /tmp/grcount1.VGmvJU/r.conf is readable by others (mode 644) and the config holds 2 literal keys: use env: or file: keys, or chmod 600
2026-12-03T10:13:38.624Z gemrouted: serving /grtest-count1-31634: 2 projects, 2 models, window 60000 ms, pid 31636
2026-12-03T10:13:38.624Z gemrouted: watching 1 file in 1 directory for changes
2026-12-03T10:13:38.624Z gemrouted: control socket /run/gemroute/grtest-count1-31634.sock (mode 600)
2026-12-03T10:13:38.632Z gemrouted: stopping (removing the table)
2026-12-03T10:13:38.645Z gemrouted: warning: /tmp/grcount2.pPsQjF/r.conf is readable by others (mode 644) and the config holds 2 literal keys: use env: or file: keys, or chmod 600
2026-12-03T10:13:38.645Z gemrouted: serving /grtest-count2-31634: 2 projects, 2 models, window 60000 ms, pid 31640
2026-12-03T10:13:38.645Z gemrouted: watching 1 file in 1 directory for changes
2026-12-03T10:13:38.645Z gemrouted: control socket /run/gemroute/grtest-count2-31634.sock (mode 600)
2026-12-03T10:13:38.664Z gemrouted: stopping (removing the table)
2026-12-03T10:13:38.678Z gemrouted: warning: /tmp/grcount3.jPaBBw/r.conf is readable by others (mode 644) and the config holds 2 literal keys: use env: or file: keys, or chmod 600
2026-12-03T10:13:38.678Z gemrouted: serving /grtest-count3-31634: 2 projects, 2 models, window 60000 ms, pid 31644
2026-12-03T10:13:38.678Z gemrouted: watching 1 file in 1 directory for changes
2026-12-03T10:13:38.678Z gemrouted: control socket /run/gemroute/grtest-count3-31634.sock (mode 600)
2026-12-03T10:13:38.683Z gemrouted: stopping (removing the table)
2026-12-03T10:13:38.696Z gemrouted: warning: /tmp/grcount4.oPHcR4/r.conf is readable by others (mode 644) and the config holds 2 literal keys: use env: or file: keys, or chmod 600
2026-12-03T10:13:38.696Z gemrouted: serving /grtest-count4-31634: 2 projects, 2 models, window 60000 ms, pid 31648
2026-12-03T10:13:38.696Z gemrouted: watching 1 file in 1 directory for changes
2026-12-03T10:13:38.696Z gemrouted: control socket /run/gemroute/grtest-count4-31634.sock (mode 600)
2026-12-03T10:13:38.700Z gemrouted: stopping (removing the table)
2026-12-03T10:20:04.198Z gemrouted: warning: /tmp/grhist.XroJg1/r.conf is readable by others (mode 644) and the config holds 2 literal keys: use env: or file: keys, or chmod 600
2026-12-03T10:20:04.198Z gemrouted: serving /grtest-hist-4144: 2 projects, 2 models, window 60000 ms, pid 4145
2026-12-03T10:20:04.198Z gemrouted: watching 1 file in 1 directory for changes
2026-12-03T10:20:04.198Z gemrouted: control socket /run/gemroute/grtest-hist-4144.sock (mode 600)
2026-12-03T10:20:09.238Z gemrouted: control: drain pb by uid 0 pid 4144 for test:ctl#1
2026-12-03T10:20:09.238Z gemrouted: control: enable pb by uid 0 pid 4144
2026-12-03T10:20:09.238Z gemrouted: control: drain nosuch from uid 0 pid 4144: no project 'nosuch' in /grtest-hist-4144
2026-12-03T10:20:09.252Z gemrouted: stopping (removing the table)
