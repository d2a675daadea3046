/*
 * sipe-driver: a headless SIPE (prpl-sipe) client on libpurple, driven by a script
 * (issue 13). The pattern of Pidgin's nullclient example: glib main loop, no UI.
 *
 * Usage: sipe-driver ACCOUNT PASSWORD HOST:PORT [SCRIPT]   (script from stdin if absent)
 *   ACCOUNT   SIP address, e.g. user1@contoso.com
 *   env SIPE_DRIVER_AUTH   ntlm (default) | kerberos | tls-dsk
 *   env SIPE_DRIVER_LOG    file that receives libpurple/SIPE debug output (SIP dumps)
 *   env SIPE_DRIVER_NAME   prefix of every output line (default: the account)
 *
 * Script: one step per line ('#' starts a comment). Prints one line per step:
 *   "<name> PASS <n> <step>" or "<name> FAIL <n> <step>: <reason>"; stops at the first
 *   failure. Exit status 0 when every step passed, 1 otherwise, 2 on bad usage.
 * Steps (each waits at most the current timeout, default 30 s):
 *   signin              the account connects (SIPE signed on)
 *   signin-fails        the account does not connect (connection error / disconnect)
 *   rooms NAME...       request the room list; every NAME is in it
 *   join NAME           join the room NAME (from the last room list); the chat opens
 *   post TEXT           send TEXT to the joined room
 *   wait TEXT           a message containing TEXT arrived in the room (from anyone)
 *   present USER        USER (substring of the participant's URI) is in the room
 *   absent USER         USER is not in the room (checked at once)
 *   left USER           USER left the room
 *   log REGEX           a debug message (SIP dumps included) matches REGEX
 *   sleep SECONDS       wait
 *   timeout SECONDS     set the timeout of the following steps
 *   signout             disconnect the account
 */
#include <glib.h>
#include <purple.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UI_ID "pchat-sipe-driver"

/* ---- event loop glue (nullclient) ---- */
#define PURPLE_GLIB_READ_COND (G_IO_IN | G_IO_HUP | G_IO_ERR)
#define PURPLE_GLIB_WRITE_COND (G_IO_OUT | G_IO_HUP | G_IO_ERR | G_IO_NVAL)

typedef struct {
	PurpleInputFunction function;
	guint result;
	gpointer data;
} IoClosure;

static void io_destroy(gpointer data) { g_free(data); }

static gboolean io_invoke(GIOChannel *source, GIOCondition condition, gpointer data)
{
	IoClosure *closure = data;
	PurpleInputCondition cond = 0;
	if (condition & PURPLE_GLIB_READ_COND)
		cond |= PURPLE_INPUT_READ;
	if (condition & PURPLE_GLIB_WRITE_COND)
		cond |= PURPLE_INPUT_WRITE;
	closure->function(closure->data, g_io_channel_unix_get_fd(source), cond);
	return TRUE;
}

static guint input_add(gint fd, PurpleInputCondition condition, PurpleInputFunction function,
		       gpointer data)
{
	IoClosure *closure = g_new0(IoClosure, 1);
	GIOCondition cond = 0;
	GIOChannel *channel;
	closure->function = function;
	closure->data = data;
	if (condition & PURPLE_INPUT_READ)
		cond |= PURPLE_GLIB_READ_COND;
	if (condition & PURPLE_INPUT_WRITE)
		cond |= PURPLE_GLIB_WRITE_COND;
	channel = g_io_channel_unix_new(fd);
	closure->result = g_io_add_watch_full(channel, G_PRIORITY_DEFAULT, cond, io_invoke,
					      closure, io_destroy);
	g_io_channel_unref(channel);
	return closure->result;
}

static PurpleEventLoopUiOps loop_ops = {
	g_timeout_add, g_source_remove, input_add, g_source_remove, NULL,
	g_timeout_add_seconds, NULL, NULL, NULL};

/* ---- state ---- */
static const char *who = "";
static PurpleAccount *account;
static GPtrArray *steps;
static guint step_no;
static guint timeout_s = 30;
static guint deadline_id;
static gboolean waiting;
static int exit_code = 0;
static GMainLoop *loop;
static FILE *debug_log;
static GPtrArray *debug_msgs;  /* every debug message, for `log` */
static GPtrArray *chat_msgs;   /* every chat message text, for `wait` */
static gboolean signed_on, conn_failed;
static char *conn_error;
static PurpleRoomlist *roomlist;
static GHashTable *room_uris; /* name -> uri */
static PurpleConversation *chat;
static char *chat_name;

static void next_step(void);
static void check(void);

static gboolean idle_next(gpointer unused)
{
	(void)unused;
	next_step();
	return FALSE;
}

static gboolean idle_check(gpointer unused)
{
	(void)unused;
	check();
	return FALSE;
}

static const char *cur(void) { return g_ptr_array_index(steps, step_no); }

static void finish(int code)
{
	exit_code = code;
	g_main_loop_quit(loop);
}

static void step_done(gboolean ok, const char *why)
{
	if (deadline_id) {
		g_source_remove(deadline_id);
		deadline_id = 0;
	}
	waiting = FALSE;
	if (ok) {
		printf("%s PASS %u %s\n", who, step_no + 1, cur());
	} else {
		printf("%s FAIL %u %s: %s\n", who, step_no + 1, cur(), why);
	}
	fflush(stdout);
	if (!ok) {
		finish(1);
		return;
	}
	step_no++;
	g_idle_add(idle_next, NULL);
}

static gboolean on_deadline(gpointer unused)
{
	(void)unused;
	deadline_id = 0;
	step_done(FALSE, conn_error ? conn_error : "timed out");
	return FALSE;
}

static const char *arg(void)
{
	const char *s = strchr(cur(), ' ');
	return s ? s + 1 : "";
}

static gboolean has_step(const char *name)
{
	size_t n = strlen(name);
	return strncmp(cur(), name, n) == 0 && (cur()[n] == ' ' || cur()[n] == '\0');
}

static gboolean user_in_chat(const char *user)
{
	GList *l;
	if (!chat)
		return FALSE;
	for (l = purple_conv_chat_get_users(PURPLE_CONV_CHAT(chat)); l; l = l->next) {
		const char *name = purple_conv_chat_cb_get_name(l->data);
		if (name && strstr(name, user))
			return TRUE;
	}
	return FALSE;
}

static gboolean any_contains(GPtrArray *a, const char *needle)
{
	guint i;
	for (i = 0; i < a->len; i++)
		if (strstr(g_ptr_array_index(a, i), needle))
			return TRUE;
	return FALSE;
}

static gboolean any_matches(GPtrArray *a, const char *re)
{
	guint i;
	for (i = 0; i < a->len; i++)
		if (g_regex_match_simple(re, g_ptr_array_index(a, i), G_REGEX_DOTALL, 0))
			return TRUE;
	return FALSE;
}

static gboolean rooms_ready(const char *why_fail_buf[1])
{
	gchar **names;
	int i;
	if (!roomlist || purple_roomlist_get_in_progress(roomlist))
		return FALSE;
	names = g_strsplit(arg(), " ", 0);
	for (i = 0; names[i]; i++) {
		if (*names[i] && !g_hash_table_lookup(room_uris, names[i])) {
			why_fail_buf[0] = "a room is missing from the room list";
			g_strfreev(names);
			return TRUE;
		}
	}
	g_strfreev(names);
	return TRUE;
}

/* Called after every event: completes the waiting step if its condition holds. */
static void check(void)
{
	if (!waiting)
		return;
	if (has_step("signin")) {
		if (signed_on)
			step_done(TRUE, NULL);
		else if (conn_failed)
			step_done(FALSE, conn_error ? conn_error : "connection failed");
	} else if (has_step("signin-fails")) {
		if (signed_on)
			step_done(FALSE, "signed in");
		else if (conn_failed)
			step_done(TRUE, NULL);
	} else if (has_step("rooms")) {
		const char *why[1] = {NULL};
		if (rooms_ready(why))
			step_done(why[0] == NULL, why[0]);
	} else if (has_step("join")) {
		if (chat)
			step_done(TRUE, NULL);
	} else if (has_step("wait")) {
		if (any_contains(chat_msgs, arg()))
			step_done(TRUE, NULL);
	} else if (has_step("present")) {
		if (user_in_chat(arg()))
			step_done(TRUE, NULL);
	} else if (has_step("left")) {
		if (!user_in_chat(arg()))
			step_done(TRUE, NULL);
	} else if (has_step("log")) {
		if (any_matches(debug_msgs, arg()))
			step_done(TRUE, NULL);
	} else if (has_step("signout")) {
		if (purple_account_is_disconnected(account))
			step_done(TRUE, NULL);
	}
	if (!signed_on && conn_failed && waiting && !has_step("signin-fails"))
		step_done(FALSE, conn_error ? conn_error : "disconnected");
}

static gboolean on_sleep(gpointer unused)
{
	(void)unused;
	deadline_id = 0;
	step_done(TRUE, NULL);
	return FALSE;
}

/* The room list exists once SIPE's group chat session is up (after provisioning and
 * the INVITE to the pool): until then ask again every half second. */
static gboolean request_rooms(gpointer unused)
{
	PurpleConnection *gc = purple_account_get_connection(account);
	(void)unused;
	if (!waiting || !has_step("rooms"))
		return FALSE;
	g_hash_table_remove_all(room_uris);
	if (roomlist)
		purple_roomlist_unref(roomlist);
	roomlist = gc ? purple_roomlist_get_list(gc) : NULL;
	if (!roomlist) {
		g_timeout_add(500, request_rooms, NULL);
		return FALSE;
	}
	purple_roomlist_ref(roomlist);
	return FALSE;
}

static void start_join(void)
{
	const char *uri = g_hash_table_lookup(room_uris, arg());
	GHashTable *comp;
	if (!uri) {
		step_done(FALSE, "no such room in the last room list");
		return;
	}
	g_free(chat_name);
	chat_name = g_strdup(arg());
	chat = NULL;
	comp = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_hash_table_insert(comp, g_strdup("uri"), g_strdup(uri));
	serv_join_chat(purple_account_get_connection(account), comp);
	g_hash_table_destroy(comp);
}

static void next_step(void)
{
	if (step_no >= steps->len) {
		finish(0);
		return;
	}
	if (has_step("timeout")) {
		timeout_s = (guint)atoi(arg());
		step_done(TRUE, NULL);
		return;
	}
	waiting = TRUE;
	if (has_step("sleep")) {
		deadline_id = g_timeout_add_seconds((guint)atoi(arg()), on_sleep, NULL);
		return;
	}
	deadline_id = g_timeout_add_seconds(timeout_s, on_deadline, NULL);
	if (has_step("signin") || has_step("signin-fails")) {
		purple_account_set_enabled(account, UI_ID, TRUE);
		if (purple_account_is_disconnected(account))
			purple_account_connect(account);
	} else if (has_step("rooms")) {
		request_rooms(NULL);
	} else if (has_step("join")) {
		start_join();
		if (!waiting)
			return;
	} else if (has_step("post")) {
		if (!chat) {
			step_done(FALSE, "no room joined");
			return;
		}
		purple_conv_chat_send(PURPLE_CONV_CHAT(chat), arg());
		step_done(TRUE, NULL);
		return;
	} else if (has_step("absent")) {
		step_done(!user_in_chat(arg()), "the user is listed in the room");
		return;
	} else if (has_step("signout")) {
		purple_account_set_enabled(account, UI_ID, FALSE);
		purple_account_disconnect(account);
	} else if (!(has_step("wait") || has_step("present") || has_step("left") ||
		     has_step("log"))) {
		step_done(FALSE, "unknown step");
		return;
	}
	check();
}

/* ---- libpurple callbacks ---- */
static void on_signed_on(PurpleConnection *gc, gpointer unused)
{
	(void)gc;
	(void)unused;
	signed_on = TRUE;
	check();
}

static void on_conn_error(PurpleConnection *gc, PurpleConnectionError err, const gchar *desc,
			  gpointer unused)
{
	(void)gc;
	(void)err;
	(void)unused;
	conn_failed = TRUE;
	g_free(conn_error);
	conn_error = g_strdup_printf("connection error: %s", desc ? desc : "?");
	check();
}

static void on_signed_off(PurpleConnection *gc, gpointer unused)
{
	(void)gc;
	(void)unused;
	if (!signed_on)
		conn_failed = TRUE;
	check();
}

static void on_chat_msg(PurpleAccount *acct, char *sender, char *message, PurpleConversation *conv,
			PurpleMessageFlags flags, gpointer unused)
{
	(void)acct;
	(void)conv;
	(void)unused;
	printf("%s got %s%s: %s\n", who, (flags & PURPLE_MESSAGE_DELAYED) ? "(history) " : "",
	       sender ? sender : "?", message ? message : "");
	fflush(stdout);
	g_ptr_array_add(chat_msgs, g_strdup(message ? message : ""));
	check();
}

static void on_chat_joined(PurpleConversation *conv, gpointer unused)
{
	(void)unused;
	chat = conv;
	check();
}

static void on_buddy_change(PurpleConversation *conv, const char *name, gpointer a, gpointer b)
{
	(void)conv;
	(void)a;
	(void)b;
	printf("%s saw %s\n", who, name ? name : "?");
	fflush(stdout);
	g_idle_add(idle_check, NULL);
}

static void rl_in_progress(PurpleRoomlist *list, gboolean in_progress)
{
	(void)list;
	if (!in_progress)
		g_idle_add(idle_check, NULL);
}

static void rl_add_room(PurpleRoomlist *list, PurpleRoomlistRoom *room)
{
	GList *fields = purple_roomlist_room_get_fields(room);
	(void)list;
	if (fields && fields->data)
		g_hash_table_insert(room_uris, g_strdup(purple_roomlist_room_get_name(room)),
				    g_strdup(fields->data));
}

static PurpleRoomlistUiOps roomlist_ops = {NULL, NULL, NULL, rl_add_room, rl_in_progress,
					   NULL, NULL, NULL, NULL, NULL};

static void debug_print(PurpleDebugLevel level, const char *category, const char *msg)
{
	(void)level;
	if (debug_log) {
		fprintf(debug_log, "%s: %s\n", category ? category : "-", msg);
		fflush(debug_log);
	}
	g_ptr_array_add(debug_msgs, g_strdup(msg));
	if (waiting && has_step("log"))
		g_idle_add(idle_check, NULL);
}

static gboolean debug_enabled(PurpleDebugLevel level, const char *category)
{
	(void)level;
	(void)category;
	return TRUE;
}

static PurpleDebugUiOps debug_ops = {debug_print, debug_enabled, NULL, NULL, NULL, NULL};

static void read_script(FILE *f)
{
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		char *s = g_strstrip(line);
		if (*s && *s != '#')
			g_ptr_array_add(steps, g_strdup(s));
	}
}

static void connect_signals(void)
{
	static int handle;
	void *conns = purple_connections_get_handle();
	void *convs = purple_conversations_get_handle();
	/* The libpurple signals the driver follows: (instance, signal, callback). */
	const struct {
		void *instance;
		const char *signal;
		PurpleCallback cb;
	} signals[] = {
		{ conns, "signed-on", PURPLE_CALLBACK(on_signed_on) },
		{ conns, "signed-off", PURPLE_CALLBACK(on_signed_off) },
		{ conns, "connection-error", PURPLE_CALLBACK(on_conn_error) },
		{ convs, "received-chat-msg", PURPLE_CALLBACK(on_chat_msg) },
		{ convs, "chat-joined", PURPLE_CALLBACK(on_chat_joined) },
		{ convs, "chat-buddy-joined", PURPLE_CALLBACK(on_buddy_change) },
		{ convs, "chat-buddy-left", PURPLE_CALLBACK(on_buddy_change) },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(signals); i++)
		purple_signal_connect(signals[i].instance, signals[i].signal, &handle,
				      signals[i].cb, NULL);
}

static void setup_account(const char *user, const char *password, const char *server)
{
	const char *auth = g_getenv("SIPE_DRIVER_AUTH");
	account = purple_account_new(user, "prpl-sipe");
	purple_account_set_password(account, password);
	purple_account_set_string(account, "server", server);
	purple_account_set_string(account, "transport", "tcp");
	purple_account_set_string(account, "authentication", auth ? auth : "ntlm");
	purple_account_set_bool(account, "sso", FALSE);
	purple_account_set_string(account, "email", "");
	purple_account_set_string(account, "email_url", "");
	purple_accounts_add(account);
}

int main(int argc, char **argv)
{
	char *dir;
	FILE *script = stdin;
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: %s ACCOUNT PASSWORD HOST:PORT [SCRIPT]\n", argv[0]);
		return 2;
	}
	if (argc == 5 && !(script = fopen(argv[4], "r"))) {
		perror(argv[4]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* SIPE draws Call-IDs, tags and branches from rand(): without a seed (which a UI
	 * such as Pidgin provides) two drivers produce the same Call-IDs and the server
	 * takes the second INVITE for a loop (482). */
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	who = g_getenv("SIPE_DRIVER_NAME") ? g_getenv("SIPE_DRIVER_NAME") : argv[1];
	steps = g_ptr_array_new();
	debug_msgs = g_ptr_array_new();
	chat_msgs = g_ptr_array_new();
	room_uris = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	read_script(script);
	if (g_getenv("SIPE_DRIVER_LOG"))
		debug_log = fopen(g_getenv("SIPE_DRIVER_LOG"), "w");
	loop = g_main_loop_new(NULL, FALSE);
	dir = g_dir_make_tmp("sipe-driver-XXXXXX", NULL);
	purple_util_set_user_dir(dir);
	purple_debug_set_enabled(FALSE);
	purple_debug_set_verbose(TRUE);
	purple_debug_set_unsafe(TRUE);
	purple_debug_set_ui_ops(&debug_ops);
	purple_eventloop_set_ui_ops(&loop_ops);
	purple_roomlist_set_ui_ops(&roomlist_ops);
	if (!purple_core_init(UI_ID)) {
		fprintf(stderr, "libpurple initialization failed\n");
		return 2;
	}
	purple_set_blist(purple_blist_new());
	if (!purple_find_prpl("prpl-sipe")) {
		fprintf(stderr, "prpl-sipe not found (install pidgin-sipe)\n");
		return 2;
	}
	connect_signals();
	setup_account(argv[1], argv[2], argv[3]);
	g_idle_add(idle_next, NULL);
	g_main_loop_run(loop);
	if (exit_code != 0) {
		for (step_no++; step_no < steps->len; step_no++)
			printf("%s SKIP %u %s\n", who, step_no + 1, cur());
	}
	fflush(stdout);
	/* No orderly libpurple shutdown: sign-out (if scripted) already ran. */
	_exit(exit_code);
}
