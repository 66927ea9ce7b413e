<?php
// Test setup, not shipped: the one-time admin setup of docs/moodle-setup.md ("Whole-site progressions through
// a custom report"), done with Moodle's own PHP API on a real-moodle work directory.
//
//   php8.2 progressions_report.php --moodle=WORKDIR/moodle [--name=...] [--timezone=UTC] [--layout=ok|wrong-order]
//
// Creates a custom report on the "Course participants" source with the columns lmsconnect reads, without the
// default "enrolment status = active" condition, sorted by course short name then username; adds the two report
// builder functions to the external service lms_connector; sets the token user's language and time zone.
// Prints one JSON line: {"reportid": N, "name": "..."}.

define('CLI_SCRIPT', true);

$options = [];
foreach (array_slice($argv, 1) as $arg) {
    if (preg_match('/^--([a-z-]+)=(.*)$/', $arg, $m)) {
        $options[$m[1]] = $m[2];
    }
}
require($options['moodle'] . '/config.php');
require_once($CFG->dirroot . '/webservice/lib.php');

use core_reportbuilder\local\helpers\report;

$name = $options['name'] ?? 'lmsconnect progressions';
$timezone = $options['timezone'] ?? 'UTC';
$layout = $options['layout'] ?? 'ok';

\core\session\manager::set_user(get_admin());

$columns = [
    'course:courseshortnamewithlink',
    'user:fullnamewithlink',
    'user:username',
    'enrolment:status',
    'enrolment:timestarted',
    'completion:timecompleted',
    'completion:progresspercent',
];
if ($layout === 'wrong-order') {
    [$columns[3], $columns[4]] = [$columns[4], $columns[3]];
}

$persistent = report::create_report((object) [
    'name' => $name,
    'source' => \core_course\reportbuilder\datasource\participants::class,
], false);
$reportid = (int) $persistent->get('id');
$sorted = [];
foreach ($columns as $identifier) {
    $column = report::add_report_column($reportid, $identifier);
    if (in_array($identifier, ['course:courseshortnamewithlink', 'user:username'], true)) {
        $sorted[] = (int) $column->get('id');
    }
}
foreach ($sorted as $position => $columnid) {
    report::toggle_report_column_sorting($reportid, $columnid, true, SORT_ASC);
    report::reorder_report_column_sorting($reportid, $columnid, $position + 1);
}

$ws = new webservice();
$service = $ws->get_external_service_by_shortname('lms_connector', MUST_EXIST);
foreach (['core_reportbuilder_list_reports', 'core_reportbuilder_retrieve_report'] as $function) {
    if (!$ws->service_function_exists($function, $service->id)) {
        $ws->add_external_function_to_service($function, $service->id);
    }
}

$admin = get_admin();
$DB->update_record('user', (object) ['id' => $admin->id, 'lang' => 'en', 'timezone' => $timezone]);
\core\session\manager::set_user(get_admin());
purge_caches();

echo json_encode(['reportid' => $reportid, 'name' => $name]) . "\n";
